-- Replace the leaders of the departments this snapshot saw (all when complete).
-- Binds: :corp_id, :observed_at, :complete.

-- name: create_stage
$TEMP_TABLE stage_wecom_department_leaders AS
SELECT corp_id, department_id, userid FROM wecom_department_leaders WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_department_leaders_key
    ON stage_wecom_department_leaders (corp_id, department_id, userid);

-- name: drop_newer
DELETE FROM stage_wecom_department_leaders
WHERE department_id IN (
    SELECT d.department_id FROM wecom_departments d
    WHERE d.corp_id = :corp_id AND d.observed_at > :observed_at
);

-- name: create_diff
$TEMP_TABLE diff_wecom_department_leaders AS
SELECT 'inserted' AS change, s.department_id AS department_id, s.userid AS userid, CAST(s.department_id AS TEXT) || ':' || CAST(s.userid AS TEXT) AS entity
FROM stage_wecom_department_leaders s
WHERE NOT EXISTS (SELECT 1 FROM wecom_department_leaders t WHERE t.corp_id = s.corp_id AND t.department_id = s.department_id AND t.userid = s.userid)
UNION ALL
SELECT 'deleted', t.department_id, t.userid, CAST(t.department_id AS TEXT) || ':' || CAST(t.userid AS TEXT)
FROM wecom_department_leaders t
WHERE t.corp_id = :corp_id
  AND (:complete OR t.department_id IN (SELECT s.department_id FROM stage_wecom_departments s))
  AND NOT EXISTS (SELECT 1 FROM wecom_departments o WHERE o.corp_id = t.corp_id
                    AND o.department_id = t.department_id AND o.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_department_leaders s WHERE s.corp_id = t.corp_id AND s.department_id = t.department_id AND s.userid = t.userid);

-- name: upsert
INSERT INTO wecom_department_leaders (corp_id, department_id, userid)
SELECT corp_id, department_id, userid FROM stage_wecom_department_leaders WHERE TRUE
ON CONFLICT (corp_id, department_id, userid) DO NOTHING;

-- name: delete
DELETE FROM wecom_department_leaders
WHERE corp_id = :corp_id
  AND (department_id, userid) IN (SELECT department_id, userid FROM diff_wecom_department_leaders WHERE change IN ('deleted'));
