-- Merge the members' custom fields. Absent is not empty, per attribute: a member whose answer
-- carried no extattr, or left an attribute out, keeps the stored rows; an attribute sent empty is
-- a row with NULL values (cleared). Rows end only with their member: a complete snapshot without
-- the member deletes them. Rows of members a newer callback wrote are left alone.
-- Binds: :corp_id, :observed_at, :now, :complete, :run_id.

-- name: create_stage
$TEMP_TABLE stage_wecom_user_attributes AS
SELECT corp_id, userid, attr_name, $ATTRIBUTES_VALUES, row_hash
FROM wecom_user_attributes WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_user_attributes_key ON stage_wecom_user_attributes (corp_id, userid, attr_name);

-- name: drop_newer
DELETE FROM stage_wecom_user_attributes
WHERE userid IN (
    SELECT u.userid FROM wecom_users u WHERE u.corp_id = :corp_id AND u.observed_at > :observed_at
);

-- name: create_diff
$TEMP_TABLE diff_wecom_user_attributes AS
SELECT 'inserted' AS change, s.userid AS userid, s.attr_name AS attr_name, s.userid || ':' || s.attr_name AS entity
FROM stage_wecom_user_attributes s
WHERE NOT EXISTS (SELECT 1 FROM wecom_user_attributes t
                  WHERE t.corp_id = s.corp_id AND t.userid = s.userid AND t.attr_name = s.attr_name)
UNION ALL
SELECT 'updated', s.userid, s.attr_name, s.userid || ':' || s.attr_name
FROM stage_wecom_user_attributes s
JOIN wecom_user_attributes t ON t.corp_id = s.corp_id AND t.userid = s.userid AND t.attr_name = s.attr_name
WHERE t.row_hash <> s.row_hash
UNION ALL
SELECT 'deleted', t.userid, t.attr_name, t.userid || ':' || t.attr_name
FROM wecom_user_attributes t
WHERE :complete AND t.corp_id = :corp_id
  AND NOT EXISTS (SELECT 1 FROM wecom_users o WHERE o.corp_id = t.corp_id
                    AND o.userid = t.userid AND o.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_users s WHERE s.corp_id = t.corp_id AND s.userid = t.userid);

-- name: history_close
UPDATE wecom_user_attributes_history SET valid_to = :observed_at,
    ended_by = CASE
        WHEN (userid, attr_name) IN (SELECT userid, attr_name FROM diff_wecom_user_attributes WHERE change = 'updated')
            THEN NULL
        WHEN userid IN (SELECT userid FROM stage_scope_exit_users) THEN 'out_of_scope'
        ELSE 'deleted' END
WHERE corp_id = :corp_id AND valid_to IS NULL
  AND (userid, attr_name) IN (SELECT userid, attr_name FROM diff_wecom_user_attributes WHERE change IN ('updated', 'deleted'));

-- name: history_open
INSERT INTO wecom_user_attributes_history (
    corp_id, userid, attr_name, $ATTRIBUTES_VALUES, row_hash,
    valid_from, valid_to, change_source, run_id
)
SELECT corp_id, userid, attr_name, $ATTRIBUTES_VALUES, row_hash,
       :observed_at, NULL, 'snapshot', :run_id
FROM stage_wecom_user_attributes s
WHERE (s.userid, s.attr_name) IN (SELECT userid, attr_name FROM diff_wecom_user_attributes WHERE change IN ('inserted', 'updated'))
ON CONFLICT (corp_id, userid, attr_name, valid_from) DO UPDATE SET
    $ATTRIBUTES_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    valid_to = NULL,
    ended_by = NULL,
    change_source = excluded.change_source,
    run_id = excluded.run_id;

-- name: upsert
INSERT INTO wecom_user_attributes (corp_id, userid, attr_name, $ATTRIBUTES_VALUES, row_hash, updated_at)
SELECT corp_id, userid, attr_name, $ATTRIBUTES_VALUES, row_hash, :now
FROM stage_wecom_user_attributes WHERE TRUE
ON CONFLICT (corp_id, userid, attr_name) DO UPDATE SET
    $ATTRIBUTES_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    updated_at = excluded.updated_at
WHERE wecom_user_attributes.row_hash <> excluded.row_hash;

-- name: delete
DELETE FROM wecom_user_attributes
WHERE corp_id = :corp_id
  AND (userid, attr_name) IN (SELECT userid, attr_name FROM diff_wecom_user_attributes WHERE change = 'deleted');
