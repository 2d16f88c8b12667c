-- One userid change (update_user with NewUserID), in the transaction that writes the
-- member's new state. Nothing is ever deleted from wecom_users: the old userid's row
-- stays as a deleted tombstone observed at the rename, so a snapshot taken before the
-- rename cannot bring it back, and every statement is a no-op when run again (a
-- retried or duplicated event). Binds: :corp_id, :old, :new, :renamed_at (the
-- event's CreateTime), :replace, :now.

-- The member's row under the new userid: inserted, or written over a deleted member
-- that held the userid before (userids are reused after deletion; that member's past
-- stays in the history), or over a live one whose deletion comes earlier in the same
-- events (:replace). Any other live row under the new userid is left alone: it is this
-- member already (a chain a -> b -> c whose later link was applied first).
-- name: copy_user
INSERT INTO wecom_users (
    corp_id, userid, $USERS_VALUES, row_hash,
    is_deleted, first_seen_at, last_seen_at, deleted_at, updated_at, observed_at
)
SELECT corp_id, :new, $USERS_VALUES, row_hash,
       is_deleted, first_seen_at, last_seen_at, deleted_at, :now, :renamed_at
FROM wecom_users
WHERE corp_id = :corp_id AND userid = :old AND observed_at <= :renamed_at
ON CONFLICT (corp_id, userid) DO UPDATE SET
    $USERS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    is_deleted = excluded.is_deleted,
    deleted_at = excluded.deleted_at,
    updated_at = excluded.updated_at,
    observed_at = excluded.observed_at
WHERE (wecom_users.is_deleted OR :replace) AND wecom_users.observed_at <= excluded.observed_at;

-- The links of a member whose userid is taken over (:replace) end with it.
-- name: drop_replaced_memberships
DELETE FROM wecom_user_departments WHERE corp_id = :corp_id AND userid = :new AND :replace;

-- name: drop_replaced_direct_leaders
DELETE FROM wecom_user_direct_leaders WHERE corp_id = :corp_id AND userid = :new AND :replace;

-- name: drop_replaced_led_departments
DELETE FROM wecom_department_leaders WHERE corp_id = :corp_id AND userid = :new AND :replace;

-- name: drop_replaced_tag_memberships
DELETE FROM wecom_tag_users WHERE corp_id = :corp_id AND userid = :new AND :replace;

-- name: drop_replaced_attributes
DELETE FROM wecom_user_attributes WHERE corp_id = :corp_id AND userid = :new AND :replace;

-- The member's own links follow it where the new userid has none; what is left under
-- the old userid afterwards is outdated (the new userid's links are newer) and goes.
-- name: move_memberships
UPDATE wecom_user_departments SET userid = :new
WHERE corp_id = :corp_id AND userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_user_departments t WHERE t.corp_id = :corp_id AND t.userid = :new);

-- name: move_direct_leaders
UPDATE wecom_user_direct_leaders SET userid = :new
WHERE corp_id = :corp_id AND userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_user_direct_leaders t WHERE t.corp_id = :corp_id AND t.userid = :new);

-- name: move_led_departments
UPDATE wecom_department_leaders SET userid = :new
WHERE corp_id = :corp_id AND userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_department_leaders t
                  WHERE t.corp_id = :corp_id AND t.department_id = wecom_department_leaders.department_id
                    AND t.userid = :new);

-- name: drop_old_memberships
DELETE FROM wecom_user_departments WHERE corp_id = :corp_id AND userid = :old;

-- name: drop_old_direct_leaders
DELETE FROM wecom_user_direct_leaders WHERE corp_id = :corp_id AND userid = :old;

-- name: drop_old_led_departments
DELETE FROM wecom_department_leaders WHERE corp_id = :corp_id AND userid = :old;

-- Other members' direct-leader references follow the rename; where one already
-- names the new userid, the old reference is dropped instead.
-- name: move_leader_references
UPDATE wecom_user_direct_leaders SET leader_userid = :new
WHERE corp_id = :corp_id AND leader_userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_user_direct_leaders t
                  WHERE t.corp_id = :corp_id AND t.userid = wecom_user_direct_leaders.userid
                    AND t.leader_userid = :new);

-- name: drop_old_direct_leader_references
DELETE FROM wecom_user_direct_leaders WHERE corp_id = :corp_id AND leader_userid = :old;

-- The member's history follows it: its versions are the new userid's past. A version
-- whose start the new userid already has (a reused userid) stays where it is.
-- name: move_history
UPDATE wecom_users_history SET userid = :new
WHERE corp_id = :corp_id AND userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_users_history h
                  WHERE h.corp_id = :corp_id AND h.userid = :new AND h.valid_from = wecom_users_history.valid_from);

-- name: move_membership_history
UPDATE wecom_user_departments_history SET userid = :new
WHERE corp_id = :corp_id AND userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_user_departments_history h
                  WHERE h.corp_id = :corp_id AND h.userid = :new
                    AND h.department_id = wecom_user_departments_history.department_id
                    AND h.valid_from = wecom_user_departments_history.valid_from);

-- Tag memberships and custom fields follow the member like its other links: what the new
-- userid does not hold yet moves, the rest under the old userid is outdated and goes.
-- name: move_tag_memberships
UPDATE wecom_tag_users SET userid = :new
WHERE corp_id = :corp_id AND userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_tag_users t
                  WHERE t.corp_id = :corp_id AND t.tag_id = wecom_tag_users.tag_id AND t.userid = :new);

-- name: drop_old_tag_memberships
DELETE FROM wecom_tag_users WHERE corp_id = :corp_id AND userid = :old;

-- name: move_attributes
UPDATE wecom_user_attributes SET userid = :new
WHERE corp_id = :corp_id AND userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_user_attributes t WHERE t.corp_id = :corp_id AND t.userid = :new);

-- name: drop_old_attributes
DELETE FROM wecom_user_attributes WHERE corp_id = :corp_id AND userid = :old;

-- name: move_tag_membership_history
UPDATE wecom_tag_users_history SET userid = :new
WHERE corp_id = :corp_id AND userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_tag_users_history h
                  WHERE h.corp_id = :corp_id AND h.userid = :new AND h.tag_id = wecom_tag_users_history.tag_id
                    AND h.valid_from = wecom_tag_users_history.valid_from);

-- name: move_attribute_history
UPDATE wecom_user_attributes_history SET userid = :new
WHERE corp_id = :corp_id AND userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_user_attributes_history h
                  WHERE h.corp_id = :corp_id AND h.userid = :new
                    AND h.attr_name = wecom_user_attributes_history.attr_name
                    AND h.valid_from = wecom_user_attributes_history.valid_from);

-- The old userid ends at the rename: a deleted row observed then.
-- name: tombstone_user
UPDATE wecom_users
SET is_deleted = TRUE, deleted_at = :renamed_at, updated_at = :now, observed_at = :renamed_at
WHERE corp_id = :corp_id AND userid = :old AND NOT is_deleted AND observed_at <= :renamed_at;
