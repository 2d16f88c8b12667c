-- Replace the memberships of the members this snapshot saw (all members when
-- the snapshot is complete), leaving alone members a newer callback touched.
-- Binds: :corp_id, :observed_at, :now, :complete.

-- name: drop_stage
DROP TABLE IF EXISTS stage_wecom_user_departments;

-- name: create_stage
$TEMP_TABLE stage_wecom_user_departments AS
SELECT corp_id, userid, department_id, sort_order, is_leader, is_main, row_hash
FROM wecom_user_departments WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_user_departments_key
    ON stage_wecom_user_departments (corp_id, userid, department_id);

-- name: analyze_stage
ANALYZE stage_wecom_user_departments;

-- name: drop_newer
DELETE FROM stage_wecom_user_departments
WHERE userid IN (
    SELECT u.userid FROM wecom_users u WHERE u.corp_id = :corp_id AND u.observed_at > :observed_at
);

-- name: plan
SELECT
    (SELECT COUNT(*) FROM stage_wecom_user_departments s
     WHERE NOT EXISTS (SELECT 1 FROM wecom_user_departments t
                       WHERE t.corp_id = s.corp_id AND t.userid = s.userid
                         AND t.department_id = s.department_id)) AS inserted,
    (SELECT COUNT(*) FROM stage_wecom_user_departments s
     JOIN wecom_user_departments t
       ON t.corp_id = s.corp_id AND t.userid = s.userid AND t.department_id = s.department_id
     WHERE t.row_hash <> s.row_hash) AS updated,
    (SELECT COUNT(*) FROM wecom_user_departments t
     WHERE t.corp_id = :corp_id
       AND (:complete OR t.userid IN (SELECT s.userid FROM stage_wecom_users s))
       AND NOT EXISTS (SELECT 1 FROM wecom_users u WHERE u.corp_id = t.corp_id AND u.userid = t.userid
                         AND u.observed_at > :observed_at)
       AND NOT EXISTS (SELECT 1 FROM stage_wecom_user_departments s
                       WHERE s.corp_id = t.corp_id AND s.userid = t.userid
                         AND s.department_id = t.department_id)) AS deleted;

-- name: upsert
INSERT INTO wecom_user_departments (
    corp_id, userid, department_id, sort_order, is_leader, is_main, row_hash, updated_at
)
SELECT corp_id, userid, department_id, sort_order, is_leader, is_main, row_hash, :now
FROM stage_wecom_user_departments WHERE TRUE
ON CONFLICT (corp_id, userid, department_id) DO UPDATE SET
    sort_order = excluded.sort_order,
    is_leader = excluded.is_leader,
    is_main = excluded.is_main,
    row_hash = excluded.row_hash,
    updated_at = excluded.updated_at
WHERE wecom_user_departments.row_hash <> excluded.row_hash;

-- name: delete_missing
DELETE FROM wecom_user_departments
WHERE corp_id = :corp_id
  AND (:complete OR userid IN (SELECT s.userid FROM stage_wecom_users s))
  AND NOT EXISTS (SELECT 1 FROM wecom_users u
                  WHERE u.corp_id = wecom_user_departments.corp_id
                    AND u.userid = wecom_user_departments.userid AND u.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_user_departments s
                  WHERE s.corp_id = wecom_user_departments.corp_id
                    AND s.userid = wecom_user_departments.userid
                    AND s.department_id = wecom_user_departments.department_id);
