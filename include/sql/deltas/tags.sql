-- Tags as update_tag callbacks change them. Membership changes are decided item by
-- item (wecom.callbacks.fold_tags), so these statements only read what is stored and
-- write the decided rows; a tag row is written only when it is created, revived or
-- renamed by a fetch, ordered by observed_at like members.
-- Binds: :corp_id, :now; :keys (tag ids) is expanded by the caller.

-- name: select_tags
SELECT tag_id, tag_name, row_hash, is_deleted, observed_at FROM wecom_tags WHERE corp_id = :corp_id AND tag_id IN :keys;

-- name: select_tag_users
SELECT tag_id, userid FROM wecom_tag_users WHERE corp_id = :corp_id AND tag_id IN :keys;

-- name: select_tag_departments
SELECT tag_id, department_id FROM wecom_tag_departments WHERE corp_id = :corp_id AND tag_id IN :keys;

-- When each member's and department's membership last changed, as the history records it:
-- a change older than that was overtaken (by a later event or a snapshot that saw it).
-- name: select_tag_user_changes
SELECT tag_id, userid AS item, MAX(valid_from) AS started, MAX(valid_to) AS ended
FROM wecom_tag_users_history WHERE corp_id = :corp_id AND tag_id IN :keys GROUP BY tag_id, userid;

-- name: select_tag_department_changes
SELECT tag_id, department_id AS item, MAX(valid_from) AS started, MAX(valid_to) AS ended
FROM wecom_tag_departments_history WHERE corp_id = :corp_id AND tag_id IN :keys GROUP BY tag_id, department_id;

-- Non-deleted tags among :keys: an event for any other one creates or revives it.
-- name: select_known_tags
SELECT tag_id FROM wecom_tags WHERE corp_id = :corp_id AND tag_id IN :keys AND NOT is_deleted;

-- name: drop_stage
DROP TABLE IF EXISTS stage_delta_tags;

-- name: create_stage
$TEMP_TABLE stage_delta_tags AS
SELECT corp_id, tag_id, $TAGS_VALUES, row_hash, observed_at FROM wecom_tags WHERE 1 = 0;

-- name: index_stage
CREATE INDEX stage_delta_tags_key ON stage_delta_tags (tag_id);

-- joins: TRUE adds the member to the tag, FALSE removes it.
-- name: drop_users_stage
DROP TABLE IF EXISTS stage_delta_tag_users;

-- name: create_users_stage
$TEMP_TABLE stage_delta_tag_users AS
SELECT corp_id, tag_id, userid, row_hash, TRUE AS joins FROM wecom_tag_users WHERE 1 = 0;

-- name: index_users_stage
CREATE INDEX stage_delta_tag_users_key ON stage_delta_tag_users (tag_id, userid);

-- name: drop_departments_stage
DROP TABLE IF EXISTS stage_delta_tag_departments;

-- name: create_departments_stage
$TEMP_TABLE stage_delta_tag_departments AS
SELECT corp_id, tag_id, department_id, row_hash, TRUE AS joins FROM wecom_tag_departments WHERE 1 = 0;

-- name: index_departments_stage
CREATE INDEX stage_delta_tag_departments_key ON stage_delta_tag_departments (tag_id, department_id);

-- name: upsert_tags
INSERT INTO wecom_tags (
    corp_id, tag_id, $TAGS_VALUES, row_hash,
    is_deleted, first_seen_at, last_seen_at, deleted_at, updated_at, observed_at
)
SELECT corp_id, tag_id, $TAGS_VALUES, row_hash, FALSE, observed_at, observed_at, NULL, :now, observed_at
FROM stage_delta_tags WHERE TRUE
ON CONFLICT (corp_id, tag_id) DO UPDATE SET
    $TAGS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    is_deleted = FALSE,
    deleted_at = NULL,
    last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at,
    observed_at = excluded.observed_at
WHERE wecom_tags.observed_at <= excluded.observed_at;

-- name: insert_tag_users
INSERT INTO wecom_tag_users (corp_id, tag_id, userid, row_hash, updated_at)
SELECT corp_id, tag_id, userid, row_hash, :now FROM stage_delta_tag_users WHERE joins
ON CONFLICT (corp_id, tag_id, userid) DO NOTHING;

-- name: delete_tag_users
DELETE FROM wecom_tag_users
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_tag_users s
              WHERE NOT s.joins AND s.tag_id = wecom_tag_users.tag_id AND s.userid = wecom_tag_users.userid);

-- name: insert_tag_departments
INSERT INTO wecom_tag_departments (corp_id, tag_id, department_id, row_hash, updated_at)
SELECT corp_id, tag_id, department_id, row_hash, :now FROM stage_delta_tag_departments WHERE joins
ON CONFLICT (corp_id, tag_id, department_id) DO NOTHING;

-- name: delete_tag_departments
DELETE FROM wecom_tag_departments
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_tag_departments s
              WHERE NOT s.joins AND s.tag_id = wecom_tag_departments.tag_id
                AND s.department_id = wecom_tag_departments.department_id);
