-- Merge one snapshot's departments (stage_wecom_departments) into wecom_departments and its history.
-- Shared steps (drop/analyze stage, plan, samples) are in common.sql.
-- Binds: :corp_id, :observed_at, :now, :complete, :run_id. A row a complete snapshot lacks is
-- 'deleted', or 'left_scope' when it is among the scope exits (stage_scope_exit_departments, see scope_exits.sql).

-- name: create_stage
$TEMP_TABLE stage_wecom_departments AS
SELECT corp_id, department_id, $DEPARTMENTS_VALUES, row_hash
FROM wecom_departments WHERE 1 = 0;


-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_departments_key ON stage_wecom_departments (corp_id, department_id);


-- name: drop_newer
DELETE FROM stage_wecom_departments
WHERE department_id IN (
    SELECT t.department_id FROM wecom_departments t
    WHERE t.corp_id = :corp_id AND t.observed_at > :observed_at
);


-- name: create_diff
$TEMP_TABLE diff_wecom_departments AS
SELECT 'inserted' AS change, s.department_id AS department_id, CAST(s.department_id AS TEXT) AS entity
FROM stage_wecom_departments s
WHERE NOT EXISTS (SELECT 1 FROM wecom_departments t WHERE t.corp_id = s.corp_id AND t.department_id = s.department_id)
UNION ALL
SELECT CASE WHEN t.is_deleted THEN 'revived' ELSE 'updated' END, s.department_id, CAST(s.department_id AS TEXT)
FROM stage_wecom_departments s
JOIN wecom_departments t ON t.corp_id = s.corp_id AND t.department_id = s.department_id
WHERE t.is_deleted OR t.row_hash <> s.row_hash
UNION ALL
SELECT CASE WHEN t.department_id IN (SELECT x.department_id FROM stage_scope_exit_departments x) THEN 'left_scope' ELSE 'deleted' END,
       t.department_id, CAST(t.department_id AS TEXT)
FROM wecom_departments t
WHERE :complete AND t.corp_id = :corp_id AND NOT t.is_deleted AND t.observed_at <= :observed_at
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_departments s WHERE s.corp_id = t.corp_id AND s.department_id = t.department_id);


-- name: current
SELECT COUNT(*) FROM wecom_departments WHERE corp_id = :corp_id AND NOT is_deleted;


-- name: history_close
UPDATE wecom_departments_history SET valid_to = :observed_at,
    ended_by = CASE WHEN department_id IN (SELECT department_id FROM diff_wecom_departments WHERE change = 'deleted') THEN 'deleted'
                    WHEN department_id IN (SELECT department_id FROM diff_wecom_departments WHERE change = 'left_scope') THEN 'out_of_scope' END
WHERE corp_id = :corp_id AND valid_to IS NULL
  AND department_id IN (SELECT department_id FROM diff_wecom_departments WHERE change IN ('updated', 'deleted', 'left_scope'));


-- name: history_open
INSERT INTO wecom_departments_history (
    corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
    valid_from, valid_to, change_source, run_id
)
SELECT corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
       :observed_at, NULL, 'snapshot', :run_id
FROM stage_wecom_departments
WHERE department_id IN (SELECT department_id FROM diff_wecom_departments WHERE change IN ('inserted', 'updated', 'revived'))
ON CONFLICT (corp_id, department_id, valid_from) DO UPDATE SET
    $DEPARTMENTS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    valid_to = NULL,
    ended_by = NULL,
    change_source = excluded.change_source,
    run_id = excluded.run_id;


-- name: upsert
INSERT INTO wecom_departments (
    corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
    is_deleted, out_of_scope, first_seen_at, last_seen_at, deleted_at, updated_at, observed_at
)
SELECT corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
       FALSE, FALSE, :observed_at, :observed_at, NULL, :now, :observed_at
FROM stage_wecom_departments WHERE TRUE
ON CONFLICT (corp_id, department_id) DO UPDATE SET
    $DEPARTMENTS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    is_deleted = FALSE,
    out_of_scope = FALSE,
    deleted_at = NULL,
    last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at,
    observed_at = excluded.observed_at
WHERE wecom_departments.row_hash <> excluded.row_hash OR wecom_departments.is_deleted;


-- name: delete
UPDATE wecom_departments
SET is_deleted = TRUE,
    out_of_scope = (department_id IN (SELECT department_id FROM diff_wecom_departments WHERE change = 'left_scope')),
    deleted_at = :observed_at, updated_at = :now, observed_at = :observed_at
WHERE corp_id = :corp_id AND department_id IN (SELECT department_id FROM diff_wecom_departments WHERE change IN ('deleted', 'left_scope'));
