-- Merge one snapshot's departments (staged in stage_wecom_departments) into
-- wecom_departments. Binds: :corp_id, :observed_at, :now.

-- name: drop_stage
DROP TABLE IF EXISTS stage_wecom_departments;

-- name: create_stage
$TEMP_TABLE stage_wecom_departments AS
SELECT corp_id, department_id, name, name_en, parent_id, sort_order, path, depth, row_hash
FROM wecom_departments WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_departments_key ON stage_wecom_departments (corp_id, department_id);

-- name: analyze_stage
ANALYZE stage_wecom_departments;

-- A callback applied after this snapshot was observed already holds newer state.
-- name: drop_newer
DELETE FROM stage_wecom_departments
WHERE department_id IN (
    SELECT t.department_id FROM wecom_departments t
    WHERE t.corp_id = :corp_id AND t.observed_at > :observed_at
);

-- name: plan
SELECT
    (SELECT COUNT(*) FROM stage_wecom_departments s
     WHERE NOT EXISTS (SELECT 1 FROM wecom_departments t
                       WHERE t.corp_id = s.corp_id AND t.department_id = s.department_id)) AS inserted,
    (SELECT COUNT(*) FROM stage_wecom_departments s
     JOIN wecom_departments t ON t.corp_id = s.corp_id AND t.department_id = s.department_id
     WHERE NOT t.is_deleted AND t.row_hash <> s.row_hash) AS updated,
    (SELECT COUNT(*) FROM stage_wecom_departments s
     JOIN wecom_departments t ON t.corp_id = s.corp_id AND t.department_id = s.department_id
     WHERE t.is_deleted) AS revived,
    (SELECT COUNT(*) FROM wecom_departments t
     WHERE t.corp_id = :corp_id AND NOT t.is_deleted AND t.observed_at <= :observed_at
       AND NOT EXISTS (SELECT 1 FROM stage_wecom_departments s
                       WHERE s.corp_id = t.corp_id AND s.department_id = t.department_id)) AS deleted,
    (SELECT COUNT(*) FROM wecom_departments t
     WHERE t.corp_id = :corp_id AND NOT t.is_deleted) AS current;

-- name: upsert
INSERT INTO wecom_departments (
    corp_id, department_id, name, name_en, parent_id, sort_order, path, depth, row_hash,
    is_deleted, first_seen_at, last_seen_at, deleted_at, updated_at, observed_at
)
SELECT corp_id, department_id, name, name_en, parent_id, sort_order, path, depth, row_hash,
       FALSE, :observed_at, :observed_at, NULL, :now, :observed_at
FROM stage_wecom_departments WHERE TRUE
ON CONFLICT (corp_id, department_id) DO UPDATE SET
    name = excluded.name,
    name_en = excluded.name_en,
    parent_id = excluded.parent_id,
    sort_order = excluded.sort_order,
    path = excluded.path,
    depth = excluded.depth,
    row_hash = excluded.row_hash,
    is_deleted = FALSE,
    deleted_at = NULL,
    last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at,
    observed_at = excluded.observed_at
WHERE wecom_departments.row_hash <> excluded.row_hash OR wecom_departments.is_deleted;

-- name: soft_delete
UPDATE wecom_departments
SET is_deleted = TRUE, deleted_at = :observed_at, updated_at = :now, observed_at = :observed_at
WHERE corp_id = :corp_id AND NOT is_deleted AND observed_at <= :observed_at
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_departments s
                  WHERE s.corp_id = wecom_departments.corp_id
                    AND s.department_id = wecom_departments.department_id);
