-- Members as callbacks change them. Every write is ordered by observed_at (the
-- event's CreateTime): a row observed later (a newer snapshot or event) is left
-- alone, and the links of a member (memberships, direct leaders, the
-- departments it leads) are replaced only where its own row took the write.
-- Binds: :corp_id, :now; :keys is expanded by the caller.

-- name: select_current
SELECT userid, $USERS_VALUES, row_hash,
       is_deleted, out_of_scope, deleted_at, observed_at
FROM wecom_users WHERE corp_id = :corp_id AND userid IN :keys;

-- name: select_memberships
SELECT userid, department_id, $MEMBERSHIPS_VALUES, row_hash
FROM wecom_user_departments WHERE corp_id = :corp_id AND userid IN :keys;

-- name: select_direct_leaders
SELECT userid, leader_userid FROM wecom_user_direct_leaders WHERE corp_id = :corp_id AND userid IN :keys;

-- A late event is replayed from the member's state just before it, as the history
-- holds it (a version valid until :since was valid just before it).
-- name: select_history_before
SELECT userid, $USERS_VALUES
FROM wecom_users_history
WHERE corp_id = :corp_id AND userid IN :keys
  AND valid_from < :since AND (valid_to IS NULL OR valid_to >= :since);

-- name: select_history_memberships_before
SELECT userid, department_id, sort_order, is_leader
FROM wecom_user_departments_history
WHERE corp_id = :corp_id AND userid IN :keys
  AND valid_from < :since AND (valid_to IS NULL OR valid_to >= :since);

-- Members with any history: for the others the current row is the only state known.
-- name: select_history_known
SELECT DISTINCT userid FROM wecom_users_history WHERE corp_id = :corp_id AND userid IN :keys;

-- name: drop_stage
DROP TABLE IF EXISTS stage_delta_users;

-- replace_leaders: the member's events said which departments it leads (or it was deleted).
-- name: create_stage
$TEMP_TABLE stage_delta_users AS
SELECT corp_id, userid, $USERS_VALUES, row_hash,
       is_deleted, out_of_scope, deleted_at, observed_at, is_deleted AS replace_leaders
FROM wecom_users WHERE 1 = 0;

-- name: index_stage
CREATE INDEX stage_delta_users_key ON stage_delta_users (userid);

-- name: drop_links_stage
DROP TABLE IF EXISTS stage_delta_user_departments;

-- name: create_links_stage
$TEMP_TABLE stage_delta_user_departments AS
SELECT corp_id, userid, department_id, $MEMBERSHIPS_VALUES, row_hash
FROM wecom_user_departments WHERE 1 = 0;

-- name: index_links_stage
CREATE INDEX stage_delta_user_departments_key ON stage_delta_user_departments (userid, department_id);

-- name: drop_direct_leaders_stage
DROP TABLE IF EXISTS stage_delta_user_direct_leaders;

-- name: create_direct_leaders_stage
$TEMP_TABLE stage_delta_user_direct_leaders AS
SELECT corp_id, userid, leader_userid FROM wecom_user_direct_leaders WHERE 1 = 0;

-- name: index_direct_leaders_stage
CREATE INDEX stage_delta_user_direct_leaders_key
    ON stage_delta_user_direct_leaders (userid, leader_userid);

-- name: drop_attributes_stage
DROP TABLE IF EXISTS stage_delta_user_attributes;

-- name: create_attributes_stage
$TEMP_TABLE stage_delta_user_attributes AS
SELECT corp_id, userid, attr_name, $ATTRIBUTES_VALUES, row_hash FROM wecom_user_attributes WHERE 1 = 0;

-- name: index_attributes_stage
CREATE INDEX stage_delta_user_attributes_key ON stage_delta_user_attributes (userid, attr_name);

-- name: drop_led_stage
DROP TABLE IF EXISTS stage_delta_user_led_departments;

-- name: create_led_stage
$TEMP_TABLE stage_delta_user_led_departments AS
SELECT corp_id, department_id, userid FROM wecom_department_leaders WHERE 1 = 0;

-- name: index_led_stage
CREATE INDEX stage_delta_user_led_departments_key ON stage_delta_user_led_departments (userid, department_id);

-- A row is rewritten when the event is newer, or as new and its content differs
-- (an event replayed on the state it already produced changes nothing).
-- name: upsert
INSERT INTO wecom_users (
    corp_id, userid, $USERS_VALUES, row_hash,
    is_deleted, out_of_scope, first_seen_at, last_seen_at, deleted_at, updated_at, observed_at
)
SELECT corp_id, userid, $USERS_VALUES, row_hash,
       is_deleted, out_of_scope, observed_at, observed_at, deleted_at, :now, observed_at
FROM stage_delta_users WHERE TRUE
ON CONFLICT (corp_id, userid) DO UPDATE SET
    $USERS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    is_deleted = excluded.is_deleted,
    out_of_scope = excluded.out_of_scope,
    deleted_at = excluded.deleted_at,
    last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at,
    observed_at = excluded.observed_at
WHERE wecom_users.observed_at <= excluded.observed_at
  AND (wecom_users.observed_at < excluded.observed_at
       OR wecom_users.row_hash <> excluded.row_hash
       OR wecom_users.is_deleted <> excluded.is_deleted
       OR wecom_users.out_of_scope <> excluded.out_of_scope
       OR wecom_users.deleted_at IS DISTINCT FROM excluded.deleted_at);

-- name: delete_stale_memberships
DELETE FROM wecom_user_departments
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.corp_id = wecom_user_departments.corp_id AND s.userid = wecom_user_departments.userid)
  AND NOT EXISTS (SELECT 1 FROM stage_delta_user_departments m
                  WHERE m.corp_id = wecom_user_departments.corp_id
                    AND m.userid = wecom_user_departments.userid
                    AND m.department_id = wecom_user_departments.department_id);

-- name: upsert_memberships
INSERT INTO wecom_user_departments (
    corp_id, userid, department_id, $MEMBERSHIPS_VALUES, row_hash, updated_at
)
SELECT m.corp_id, m.userid, m.department_id, m.sort_order, m.is_leader, m.is_main, m.row_hash, :now
FROM stage_delta_user_departments m
WHERE EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.corp_id = m.corp_id AND s.userid = m.userid)
ON CONFLICT (corp_id, userid, department_id) DO UPDATE SET
    $MEMBERSHIPS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    updated_at = excluded.updated_at
WHERE wecom_user_departments.row_hash <> excluded.row_hash;

-- name: delete_stale_direct_leaders
DELETE FROM wecom_user_direct_leaders
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.corp_id = wecom_user_direct_leaders.corp_id AND s.userid = wecom_user_direct_leaders.userid)
  AND NOT EXISTS (SELECT 1 FROM stage_delta_user_direct_leaders d
                  WHERE d.corp_id = wecom_user_direct_leaders.corp_id
                    AND d.userid = wecom_user_direct_leaders.userid
                    AND d.leader_userid = wecom_user_direct_leaders.leader_userid);

-- name: insert_direct_leaders
INSERT INTO wecom_user_direct_leaders (corp_id, userid, leader_userid)
SELECT d.corp_id, d.userid, d.leader_userid FROM stage_delta_user_direct_leaders d
WHERE EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.corp_id = d.corp_id AND s.userid = d.userid)
  AND NOT EXISTS (SELECT 1 FROM wecom_users l
                  WHERE l.corp_id = d.corp_id AND l.userid = d.leader_userid AND l.is_deleted)
ON CONFLICT (corp_id, userid, leader_userid) DO NOTHING;

-- name: delete_stale_led_departments
DELETE FROM wecom_department_leaders
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.replace_leaders AND s.corp_id = wecom_department_leaders.corp_id
                AND s.userid = wecom_department_leaders.userid)
  AND NOT EXISTS (SELECT 1 FROM stage_delta_user_led_departments l
                  WHERE l.corp_id = wecom_department_leaders.corp_id
                    AND l.userid = wecom_department_leaders.userid
                    AND l.department_id = wecom_department_leaders.department_id);

-- name: insert_led_departments
INSERT INTO wecom_department_leaders (corp_id, department_id, userid)
SELECT l.corp_id, l.department_id, l.userid FROM stage_delta_user_led_departments l
WHERE EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.replace_leaders AND s.corp_id = l.corp_id AND s.userid = l.userid)
ON CONFLICT (corp_id, department_id, userid) DO NOTHING;

-- A deleted member leads nobody: other members' direct-leader references to it go, as WeCom drops them.
-- One that left the department scope still leads its in-scope reports, as a full sync keeps it.
-- name: delete_references_to_deleted
DELETE FROM wecom_user_direct_leaders
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.is_deleted AND NOT s.out_of_scope AND s.corp_id = wecom_user_direct_leaders.corp_id
                AND s.userid = wecom_user_direct_leaders.leader_userid);

-- Custom fields a member's version names; the ones it leaves out keep their rows.
-- name: upsert_attributes
INSERT INTO wecom_user_attributes (corp_id, userid, attr_name, $ATTRIBUTES_VALUES, row_hash, updated_at)
SELECT a.corp_id, a.userid, a.attr_name, $ATTRIBUTES_VALUES, a.row_hash, :now
FROM stage_delta_user_attributes a
WHERE EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.corp_id = a.corp_id AND s.userid = a.userid)
ON CONFLICT (corp_id, userid, attr_name) DO UPDATE SET
    $ATTRIBUTES_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    updated_at = excluded.updated_at
WHERE wecom_user_attributes.row_hash <> excluded.row_hash;

-- A member who left takes its custom fields along, as a full sync does.
-- name: delete_attributes_of_deleted
DELETE FROM wecom_user_attributes
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.is_deleted AND s.corp_id = wecom_user_attributes.corp_id
                AND s.userid = wecom_user_attributes.userid);

-- WeCom drops a deleted member from its tags without an update_tag event.
-- name: delete_tag_memberships_of_deleted
DELETE FROM wecom_tag_users
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_users s JOIN wecom_users u
                ON u.corp_id = s.corp_id AND u.userid = s.userid AND u.observed_at = s.observed_at
              WHERE s.is_deleted AND s.corp_id = wecom_tag_users.corp_id AND s.userid = wecom_tag_users.userid);

-- name: select_tag_memberships
SELECT tag_id, userid FROM wecom_tag_users WHERE corp_id = :corp_id AND userid IN :keys;

-- name: select_attributes
SELECT userid, attr_name, row_hash FROM wecom_user_attributes WHERE corp_id = :corp_id AND userid IN :keys;

-- Departments a member event may name: every stored one, deleted ones included; those out of the
-- department scope place a member outside it.
-- name: select_department_ids
SELECT department_id, out_of_scope FROM wecom_departments WHERE corp_id = :corp_id;

-- Stored members per department, for the ids-only fetches' plan (wecom.callbacks.fetch).
-- name: count_members
SELECT department_id, COUNT(*) FROM wecom_user_departments
WHERE corp_id = :corp_id AND department_id IN :ids
GROUP BY department_id;
