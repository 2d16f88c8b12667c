-- Replace the direct leaders of the members this snapshot saw (all when complete).
-- Binds: :corp_id, :observed_at, :complete.

-- name: create_stage
$TEMP_TABLE stage_wecom_user_direct_leaders AS
SELECT corp_id, userid, leader_userid FROM wecom_user_direct_leaders WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_user_direct_leaders_key
    ON stage_wecom_user_direct_leaders (corp_id, userid, leader_userid);

-- name: drop_newer
DELETE FROM stage_wecom_user_direct_leaders
WHERE userid IN (
    SELECT u.userid FROM wecom_users u WHERE u.corp_id = :corp_id AND u.observed_at > :observed_at
);

-- name: create_diff
$TEMP_TABLE diff_wecom_user_direct_leaders AS
SELECT 'inserted' AS change, s.userid AS userid, s.leader_userid AS leader_userid, CAST(s.userid AS TEXT) || ':' || CAST(s.leader_userid AS TEXT) AS entity
FROM stage_wecom_user_direct_leaders s
WHERE NOT EXISTS (SELECT 1 FROM wecom_user_direct_leaders t WHERE t.corp_id = s.corp_id AND t.userid = s.userid AND t.leader_userid = s.leader_userid)
UNION ALL
SELECT 'deleted', t.userid, t.leader_userid, CAST(t.userid AS TEXT) || ':' || CAST(t.leader_userid AS TEXT)
FROM wecom_user_direct_leaders t
WHERE t.corp_id = :corp_id
  AND (:complete OR t.userid IN (SELECT s.userid FROM stage_wecom_users s))
  AND NOT EXISTS (SELECT 1 FROM wecom_users o WHERE o.corp_id = t.corp_id
                    AND o.userid = t.userid AND o.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_user_direct_leaders s WHERE s.corp_id = t.corp_id AND s.userid = t.userid AND s.leader_userid = t.leader_userid);

-- name: upsert
INSERT INTO wecom_user_direct_leaders (corp_id, userid, leader_userid)
SELECT corp_id, userid, leader_userid FROM stage_wecom_user_direct_leaders WHERE TRUE
ON CONFLICT (corp_id, userid, leader_userid) DO NOTHING;

-- name: delete
DELETE FROM wecom_user_direct_leaders
WHERE corp_id = :corp_id
  AND (userid, leader_userid) IN (SELECT userid, leader_userid FROM diff_wecom_user_direct_leaders WHERE change IN ('deleted'));
