-- Replace the direct leaders of the members this snapshot saw (all when complete).
-- Binds: :corp_id, :observed_at, :complete.

-- name: drop_stage
DROP TABLE IF EXISTS stage_wecom_user_direct_leaders;

-- name: create_stage
$TEMP_TABLE stage_wecom_user_direct_leaders AS
SELECT corp_id, userid, leader_userid FROM wecom_user_direct_leaders WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_user_direct_leaders_key
    ON stage_wecom_user_direct_leaders (corp_id, userid, leader_userid);

-- name: analyze_stage
ANALYZE stage_wecom_user_direct_leaders;

-- name: drop_newer
DELETE FROM stage_wecom_user_direct_leaders
WHERE userid IN (
    SELECT u.userid FROM wecom_users u WHERE u.corp_id = :corp_id AND u.observed_at > :observed_at
);

-- name: plan
SELECT
    (SELECT COUNT(*) FROM stage_wecom_user_direct_leaders s
     WHERE NOT EXISTS (SELECT 1 FROM wecom_user_direct_leaders t
                       WHERE t.corp_id = s.corp_id AND t.userid = s.userid
                         AND t.leader_userid = s.leader_userid)) AS inserted,
    0 AS updated,
    (SELECT COUNT(*) FROM wecom_user_direct_leaders t
     WHERE t.corp_id = :corp_id
       AND (:complete OR t.userid IN (SELECT s.userid FROM stage_wecom_users s))
       AND NOT EXISTS (SELECT 1 FROM wecom_users u WHERE u.corp_id = t.corp_id AND u.userid = t.userid
                         AND u.observed_at > :observed_at)
       AND NOT EXISTS (SELECT 1 FROM stage_wecom_user_direct_leaders s
                       WHERE s.corp_id = t.corp_id AND s.userid = t.userid
                         AND s.leader_userid = t.leader_userid)) AS deleted;

-- name: upsert
INSERT INTO wecom_user_direct_leaders (corp_id, userid, leader_userid)
SELECT corp_id, userid, leader_userid FROM stage_wecom_user_direct_leaders WHERE TRUE
ON CONFLICT (corp_id, userid, leader_userid) DO NOTHING;

-- name: delete_missing
DELETE FROM wecom_user_direct_leaders
WHERE corp_id = :corp_id
  AND (:complete OR userid IN (SELECT s.userid FROM stage_wecom_users s))
  AND NOT EXISTS (SELECT 1 FROM wecom_users u
                  WHERE u.corp_id = wecom_user_direct_leaders.corp_id
                    AND u.userid = wecom_user_direct_leaders.userid AND u.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_user_direct_leaders s
                  WHERE s.corp_id = wecom_user_direct_leaders.corp_id
                    AND s.userid = wecom_user_direct_leaders.userid
                    AND s.leader_userid = wecom_user_direct_leaders.leader_userid);
