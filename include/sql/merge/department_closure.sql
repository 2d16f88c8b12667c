-- Replace the ancestor rows of the departments this snapshot saw (all when complete).
-- Binds: :corp_id, :observed_at, :complete.

-- name: create_stage
$TEMP_TABLE stage_wecom_department_closure AS
SELECT corp_id, ancestor_id, descendant_id, distance FROM wecom_department_closure WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_department_closure_key
    ON stage_wecom_department_closure (corp_id, ancestor_id, descendant_id);

-- name: drop_newer
DELETE FROM stage_wecom_department_closure
WHERE descendant_id IN (
    SELECT d.department_id FROM wecom_departments d
    WHERE d.corp_id = :corp_id AND d.observed_at > :observed_at
);

-- name: create_diff
$TEMP_TABLE diff_wecom_department_closure AS
SELECT 'inserted' AS change, s.ancestor_id AS ancestor_id, s.descendant_id AS descendant_id, CAST(s.ancestor_id AS TEXT) || ':' || CAST(s.descendant_id AS TEXT) AS entity
FROM stage_wecom_department_closure s
WHERE NOT EXISTS (SELECT 1 FROM wecom_department_closure t WHERE t.corp_id = s.corp_id AND t.ancestor_id = s.ancestor_id AND t.descendant_id = s.descendant_id)
UNION ALL
SELECT 'updated', s.ancestor_id, s.descendant_id, CAST(s.ancestor_id AS TEXT) || ':' || CAST(s.descendant_id AS TEXT)
FROM stage_wecom_department_closure s JOIN wecom_department_closure t ON t.corp_id = s.corp_id AND t.ancestor_id = s.ancestor_id AND t.descendant_id = s.descendant_id
WHERE t.distance <> s.distance
UNION ALL
SELECT 'deleted', t.ancestor_id, t.descendant_id, CAST(t.ancestor_id AS TEXT) || ':' || CAST(t.descendant_id AS TEXT)
FROM wecom_department_closure t
WHERE t.corp_id = :corp_id
  AND (:complete OR t.descendant_id IN (SELECT s.department_id FROM stage_wecom_departments s))
  AND NOT EXISTS (SELECT 1 FROM wecom_departments o WHERE o.corp_id = t.corp_id
                    AND o.department_id = t.descendant_id AND o.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_department_closure s WHERE s.corp_id = t.corp_id AND s.ancestor_id = t.ancestor_id AND s.descendant_id = t.descendant_id);

-- name: upsert
INSERT INTO wecom_department_closure (corp_id, ancestor_id, descendant_id, distance)
SELECT corp_id, ancestor_id, descendant_id, distance FROM stage_wecom_department_closure WHERE TRUE
ON CONFLICT (corp_id, ancestor_id, descendant_id) DO UPDATE SET distance = excluded.distance
WHERE wecom_department_closure.distance <> excluded.distance;

-- name: delete
DELETE FROM wecom_department_closure
WHERE corp_id = :corp_id
  AND (ancestor_id, descendant_id) IN (SELECT ancestor_id, descendant_id FROM diff_wecom_department_closure WHERE change IN ('deleted'));
