-- Merge one snapshot's users (stage_wecom_users) into wecom_users and its history.
-- Shared steps (drop/analyze stage, plan, samples) are in common.sql.
-- Binds: :corp_id, :observed_at, :now, :complete, :run_id. A row a complete snapshot lacks is
-- 'deleted', or 'left_scope' when it is among the scope exits (stage_scope_exit_users, see scope_exits.sql).

-- name: create_stage
$TEMP_TABLE stage_wecom_users AS
SELECT corp_id, userid, $USERS_VALUES, row_hash
FROM wecom_users WHERE 1 = 0;


-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_users_key ON stage_wecom_users (corp_id, userid);


-- name: drop_newer
DELETE FROM stage_wecom_users
WHERE userid IN (
    SELECT t.userid FROM wecom_users t
    WHERE t.corp_id = :corp_id AND t.observed_at > :observed_at
);


-- name: create_diff
$TEMP_TABLE diff_wecom_users AS
SELECT 'inserted' AS change, s.userid AS userid, s.userid AS entity
FROM stage_wecom_users s
WHERE NOT EXISTS (SELECT 1 FROM wecom_users t WHERE t.corp_id = s.corp_id AND t.userid = s.userid)
UNION ALL
SELECT CASE WHEN t.is_deleted THEN 'revived' ELSE 'updated' END, s.userid, s.userid
FROM stage_wecom_users s
JOIN wecom_users t ON t.corp_id = s.corp_id AND t.userid = s.userid
WHERE t.is_deleted OR t.row_hash <> s.row_hash
UNION ALL
SELECT CASE WHEN t.userid IN (SELECT x.userid FROM stage_scope_exit_users x) THEN 'left_scope' ELSE 'deleted' END,
       t.userid, t.userid
FROM wecom_users t
WHERE :complete AND t.corp_id = :corp_id AND NOT t.is_deleted AND t.observed_at <= :observed_at
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_users s WHERE s.corp_id = t.corp_id AND s.userid = t.userid);


-- name: current
SELECT COUNT(*) FROM wecom_users WHERE corp_id = :corp_id AND NOT is_deleted;


-- name: history_close
UPDATE wecom_users_history SET valid_to = :observed_at,
    ended_by = CASE WHEN userid IN (SELECT userid FROM diff_wecom_users WHERE change = 'deleted') THEN 'deleted'
                    WHEN userid IN (SELECT userid FROM diff_wecom_users WHERE change = 'left_scope') THEN 'out_of_scope' END
WHERE corp_id = :corp_id AND valid_to IS NULL
  AND userid IN (SELECT userid FROM diff_wecom_users WHERE change IN ('updated', 'deleted', 'left_scope'));


-- name: history_open
INSERT INTO wecom_users_history (
    corp_id, userid, $USERS_VALUES, row_hash,
    valid_from, valid_to, change_source, run_id
)
SELECT corp_id, userid, $USERS_VALUES, row_hash,
       :observed_at, NULL, 'snapshot', :run_id
FROM stage_wecom_users
WHERE userid IN (SELECT userid FROM diff_wecom_users WHERE change IN ('inserted', 'updated', 'revived'))
ON CONFLICT (corp_id, userid, valid_from) DO UPDATE SET
    $USERS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    valid_to = NULL,
    ended_by = NULL,
    change_source = excluded.change_source,
    run_id = excluded.run_id;


-- name: upsert
INSERT INTO wecom_users (
    corp_id, userid, $USERS_VALUES, row_hash,
    is_deleted, out_of_scope, first_seen_at, last_seen_at, deleted_at, updated_at, observed_at
)
SELECT corp_id, userid, $USERS_VALUES, row_hash,
       FALSE, FALSE, :observed_at, :observed_at, NULL, :now, :observed_at
FROM stage_wecom_users WHERE TRUE
ON CONFLICT (corp_id, userid) DO UPDATE SET
    $USERS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    is_deleted = FALSE,
    out_of_scope = FALSE,
    deleted_at = NULL,
    last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at,
    observed_at = excluded.observed_at
WHERE wecom_users.row_hash <> excluded.row_hash OR wecom_users.is_deleted;


-- name: delete
UPDATE wecom_users
SET is_deleted = TRUE,
    out_of_scope = (userid IN (SELECT userid FROM diff_wecom_users WHERE change = 'left_scope')),
    deleted_at = :observed_at, updated_at = :now, observed_at = :observed_at
WHERE corp_id = :corp_id AND userid IN (SELECT userid FROM diff_wecom_users WHERE change IN ('deleted', 'left_scope'));
