-- Replace the members of the tags this snapshot read (every tag's when tag/list answered and the
-- snapshot is complete), leaving alone tags a newer callback or fetch observed, and keep their
-- history. Members of tags whose answers were withheld come back staged as they were stored
-- (wecom.store.withheld_values), so they are neither deleted nor rewritten.
-- Binds: :corp_id, :observed_at, :now, :tags_complete, :run_id.

-- name: create_stage
$TEMP_TABLE stage_wecom_tag_users AS
SELECT corp_id, tag_id, userid, row_hash
FROM wecom_tag_users WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_tag_users_key ON stage_wecom_tag_users (corp_id, tag_id, userid);

-- name: drop_newer
DELETE FROM stage_wecom_tag_users
WHERE tag_id IN (
    SELECT t.tag_id FROM wecom_tags t WHERE t.corp_id = :corp_id AND t.observed_at > :observed_at
);

-- name: create_diff
$TEMP_TABLE diff_wecom_tag_users AS
SELECT 'inserted' AS change, s.tag_id AS tag_id, s.userid AS userid, CAST(s.tag_id AS TEXT) || ':' || s.userid AS entity
FROM stage_wecom_tag_users s
WHERE NOT EXISTS (SELECT 1 FROM wecom_tag_users t WHERE t.corp_id = s.corp_id AND t.tag_id = s.tag_id AND t.userid = s.userid)
UNION ALL
SELECT 'deleted', t.tag_id, t.userid, CAST(t.tag_id AS TEXT) || ':' || t.userid
FROM wecom_tag_users t
WHERE t.corp_id = :corp_id
  AND (:tags_complete OR t.tag_id IN (SELECT s.tag_id FROM stage_wecom_tags s))
  AND NOT EXISTS (SELECT 1 FROM wecom_tags o WHERE o.corp_id = t.corp_id
                    AND o.tag_id = t.tag_id AND o.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_tag_users s WHERE s.corp_id = t.corp_id AND s.tag_id = t.tag_id AND s.userid = t.userid);

-- name: current
SELECT COUNT(*) FROM wecom_tag_users WHERE corp_id = :corp_id;

-- The deletions the mass-deletion guard weighs: members who leave a tag while both the tag and the
-- member stay (a tag or a member that goes is weighed as such).
-- name: guarded
SELECT COUNT(*) FROM diff_wecom_tag_users d
WHERE d.change = 'deleted'
  AND EXISTS (SELECT 1 FROM stage_wecom_tags t WHERE t.tag_id = d.tag_id)
  AND EXISTS (SELECT 1 FROM stage_wecom_users u WHERE u.userid = d.userid);

-- name: history_close
UPDATE wecom_tag_users_history SET valid_to = :observed_at,
    ended_by = CASE WHEN userid IN (SELECT userid FROM stage_scope_exit_users) THEN 'out_of_scope' ELSE 'deleted' END
WHERE corp_id = :corp_id AND valid_to IS NULL
  AND (tag_id, userid) IN (SELECT tag_id, userid FROM diff_wecom_tag_users WHERE change = 'deleted');

-- name: history_open
INSERT INTO wecom_tag_users_history (corp_id, tag_id, userid, row_hash, valid_from, valid_to, change_source, run_id)
SELECT corp_id, tag_id, userid, row_hash, :observed_at, NULL, 'snapshot', :run_id
FROM stage_wecom_tag_users s
WHERE (s.tag_id, s.userid) IN (SELECT tag_id, userid FROM diff_wecom_tag_users WHERE change = 'inserted')
ON CONFLICT (corp_id, tag_id, userid, valid_from) DO UPDATE SET
    row_hash = excluded.row_hash,
    valid_to = NULL,
    ended_by = NULL,
    change_source = excluded.change_source,
    run_id = excluded.run_id;

-- name: upsert
INSERT INTO wecom_tag_users (corp_id, tag_id, userid, row_hash, updated_at)
SELECT corp_id, tag_id, userid, row_hash, :now
FROM stage_wecom_tag_users WHERE TRUE
ON CONFLICT (corp_id, tag_id, userid) DO NOTHING;

-- name: delete
DELETE FROM wecom_tag_users
WHERE corp_id = :corp_id
  AND (tag_id, userid) IN (SELECT tag_id, userid FROM diff_wecom_tag_users WHERE change = 'deleted');
