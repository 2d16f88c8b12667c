-- Replace the leaders of the departments this snapshot saw (all when complete).
-- Binds: :corp_id, :observed_at, :complete.

-- name: drop_stage
DROP TABLE IF EXISTS stage_wecom_department_leaders;

-- name: create_stage
$TEMP_TABLE stage_wecom_department_leaders AS
SELECT corp_id, department_id, userid FROM wecom_department_leaders WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_department_leaders_key
    ON stage_wecom_department_leaders (corp_id, department_id, userid);

-- name: analyze_stage
ANALYZE stage_wecom_department_leaders;

-- name: drop_newer
DELETE FROM stage_wecom_department_leaders
WHERE department_id IN (
    SELECT d.department_id FROM wecom_departments d
    WHERE d.corp_id = :corp_id AND d.observed_at > :observed_at
);

-- name: plan
SELECT
    (SELECT COUNT(*) FROM stage_wecom_department_leaders s
     WHERE NOT EXISTS (SELECT 1 FROM wecom_department_leaders t
                       WHERE t.corp_id = s.corp_id AND t.department_id = s.department_id
                         AND t.userid = s.userid)) AS inserted,
    0 AS updated,
    (SELECT COUNT(*) FROM wecom_department_leaders t
     WHERE t.corp_id = :corp_id
       AND (:complete OR t.department_id IN (SELECT s.department_id FROM stage_wecom_departments s))
       AND NOT EXISTS (SELECT 1 FROM wecom_departments d WHERE d.corp_id = t.corp_id
                         AND d.department_id = t.department_id AND d.observed_at > :observed_at)
       AND NOT EXISTS (SELECT 1 FROM stage_wecom_department_leaders s
                       WHERE s.corp_id = t.corp_id AND s.department_id = t.department_id
                         AND s.userid = t.userid)) AS deleted;

-- name: upsert
INSERT INTO wecom_department_leaders (corp_id, department_id, userid)
SELECT corp_id, department_id, userid FROM stage_wecom_department_leaders WHERE TRUE
ON CONFLICT (corp_id, department_id, userid) DO NOTHING;

-- name: delete_missing
DELETE FROM wecom_department_leaders
WHERE corp_id = :corp_id
  AND (:complete OR department_id IN (SELECT s.department_id FROM stage_wecom_departments s))
  AND NOT EXISTS (SELECT 1 FROM wecom_departments d
                  WHERE d.corp_id = wecom_department_leaders.corp_id
                    AND d.department_id = wecom_department_leaders.department_id
                    AND d.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_department_leaders s
                  WHERE s.corp_id = wecom_department_leaders.corp_id
                    AND s.department_id = wecom_department_leaders.department_id
                    AND s.userid = wecom_department_leaders.userid);
