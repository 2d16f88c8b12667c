-- Replace the departments of the tags this snapshot read (every tag's when tag/list answered and the
-- snapshot is complete), leaving alone tags a newer callback or fetch observed, and keep their
-- history. Departments of tags whose answers were withheld come back staged as they were stored
-- (wecom.store.withheld_values), so they are neither deleted nor rewritten.
-- Binds: :corp_id, :observed_at, :now, :tags_complete, :run_id.

-- name: create_stage
$TEMP_TABLE stage_wecom_tag_departments AS
SELECT corp_id, tag_id, department_id, row_hash
FROM wecom_tag_departments WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_tag_departments_key ON stage_wecom_tag_departments (corp_id, tag_id, department_id);

-- name: drop_newer
DELETE FROM stage_wecom_tag_departments
WHERE tag_id IN (
    SELECT t.tag_id FROM wecom_tags t WHERE t.corp_id = :corp_id AND t.observed_at > :observed_at
);

-- name: create_diff
$TEMP_TABLE diff_wecom_tag_departments AS
SELECT 'inserted' AS change, s.tag_id AS tag_id, s.department_id AS department_id, CAST(s.tag_id AS TEXT) || ':' || CAST(s.department_id AS TEXT) AS entity
FROM stage_wecom_tag_departments s
WHERE NOT EXISTS (SELECT 1 FROM wecom_tag_departments t WHERE t.corp_id = s.corp_id AND t.tag_id = s.tag_id AND t.department_id = s.department_id)
UNION ALL
SELECT 'deleted', t.tag_id, t.department_id, CAST(t.tag_id AS TEXT) || ':' || CAST(t.department_id AS TEXT)
FROM wecom_tag_departments t
WHERE t.corp_id = :corp_id
  AND (:tags_complete OR t.tag_id IN (SELECT s.tag_id FROM stage_wecom_tags s))
  AND NOT EXISTS (SELECT 1 FROM wecom_tags o WHERE o.corp_id = t.corp_id
                    AND o.tag_id = t.tag_id AND o.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_tag_departments s WHERE s.corp_id = t.corp_id AND s.tag_id = t.tag_id AND s.department_id = t.department_id);

-- name: current
SELECT COUNT(*) FROM wecom_tag_departments WHERE corp_id = :corp_id;

-- The deletions the mass-deletion guard weighs: departments that leave a tag while both the tag and
-- the department stay (a tag or a department that goes is weighed as such).
-- name: guarded
SELECT COUNT(*) FROM diff_wecom_tag_departments d
WHERE d.change = 'deleted'
  AND EXISTS (SELECT 1 FROM stage_wecom_tags t WHERE t.tag_id = d.tag_id)
  AND EXISTS (SELECT 1 FROM stage_wecom_departments p WHERE p.department_id = d.department_id);

-- name: history_close
UPDATE wecom_tag_departments_history SET valid_to = :observed_at,
    ended_by = CASE WHEN department_id IN (SELECT department_id FROM stage_scope_exit_departments) THEN 'out_of_scope'
                    ELSE 'deleted' END
WHERE corp_id = :corp_id AND valid_to IS NULL
  AND (tag_id, department_id) IN (SELECT tag_id, department_id FROM diff_wecom_tag_departments WHERE change = 'deleted');

-- name: history_open
INSERT INTO wecom_tag_departments_history (corp_id, tag_id, department_id, row_hash, valid_from, valid_to, change_source, run_id)
SELECT corp_id, tag_id, department_id, row_hash, :observed_at, NULL, 'snapshot', :run_id
FROM stage_wecom_tag_departments s
WHERE (s.tag_id, s.department_id) IN (SELECT tag_id, department_id FROM diff_wecom_tag_departments WHERE change = 'inserted')
ON CONFLICT (corp_id, tag_id, department_id, valid_from) DO UPDATE SET
    row_hash = excluded.row_hash,
    valid_to = NULL,
    ended_by = NULL,
    change_source = excluded.change_source,
    run_id = excluded.run_id;

-- name: upsert
INSERT INTO wecom_tag_departments (corp_id, tag_id, department_id, row_hash, updated_at)
SELECT corp_id, tag_id, department_id, row_hash, :now
FROM stage_wecom_tag_departments WHERE TRUE
ON CONFLICT (corp_id, tag_id, department_id) DO NOTHING;

-- name: delete
DELETE FROM wecom_tag_departments
WHERE corp_id = :corp_id
  AND (tag_id, department_id) IN (SELECT tag_id, department_id FROM diff_wecom_tag_departments WHERE change = 'deleted');
