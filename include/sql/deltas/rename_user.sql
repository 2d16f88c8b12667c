-- One userid change (update_user with NewUserID), applied before the members'
-- new states are written. Binds: :corp_id, :old, :new, :renamed_at (the event's
-- CreateTime); the link statements bind :userid.

-- The new userid held an older, different member (a userid reused after deletion):
-- its rows give way to the renamed member's.
-- name: drop_target
DELETE FROM wecom_users WHERE corp_id = :corp_id AND userid = :new AND observed_at < :renamed_at;

-- Guarded like every write: a row observed after the rename is not the renamed member.
-- name: move_user
UPDATE wecom_users SET userid = :new
WHERE corp_id = :corp_id AND userid = :old AND observed_at <= :renamed_at
  AND NOT EXISTS (SELECT 1 FROM wecom_users t WHERE t.corp_id = :corp_id AND t.userid = :new);

-- The new userid already holds newer state, so the old row's content is outdated.
-- name: drop_user
DELETE FROM wecom_users WHERE corp_id = :corp_id AND userid = :old AND observed_at <= :renamed_at;

-- Link rows follow the member row: run only when one of the statements above changed it.
-- name: drop_memberships
DELETE FROM wecom_user_departments WHERE corp_id = :corp_id AND userid = :userid;

-- name: drop_direct_leaders
DELETE FROM wecom_user_direct_leaders WHERE corp_id = :corp_id AND userid = :userid;

-- name: drop_led_departments
DELETE FROM wecom_department_leaders WHERE corp_id = :corp_id AND userid = :userid;

-- name: move_memberships
UPDATE wecom_user_departments SET userid = :new WHERE corp_id = :corp_id AND userid = :old;

-- name: move_direct_leaders
UPDATE wecom_user_direct_leaders SET userid = :new WHERE corp_id = :corp_id AND userid = :old;

-- name: move_led_departments
UPDATE wecom_department_leaders SET userid = :new WHERE corp_id = :corp_id AND userid = :old;

-- Other members' direct-leader references follow the rename; where one already
-- names the new userid, the old reference is dropped instead.
-- name: move_leader_references
UPDATE wecom_user_direct_leaders SET leader_userid = :new
WHERE corp_id = :corp_id AND leader_userid = :old
  AND NOT EXISTS (SELECT 1 FROM wecom_user_direct_leaders t
                  WHERE t.corp_id = :corp_id AND t.userid = wecom_user_direct_leaders.userid
                    AND t.leader_userid = :new);

-- name: drop_leader_references
DELETE FROM wecom_user_direct_leaders WHERE corp_id = :corp_id AND leader_userid = :old;
