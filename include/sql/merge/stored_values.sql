-- The stored rows a snapshot falls back on where WeCom withheld a field or a link set
-- (wecom.directory.withheld): one statement per table, named by it. Deleted members and
-- departments are read too, so one that comes back keeps what was known of it.
-- Binds: :corp_id.

-- name: wecom_users
SELECT userid, $USERS_VALUES
FROM wecom_users WHERE corp_id = :corp_id;

-- name: wecom_departments
SELECT department_id, name, name_en, sort_order FROM wecom_departments WHERE corp_id = :corp_id;

-- name: wecom_user_departments
SELECT corp_id, userid, department_id, $MEMBERSHIPS_VALUES, row_hash
FROM wecom_user_departments WHERE corp_id = :corp_id;

-- name: wecom_user_direct_leaders
SELECT corp_id, userid, leader_userid FROM wecom_user_direct_leaders WHERE corp_id = :corp_id;

-- name: wecom_department_leaders
SELECT corp_id, department_id, userid FROM wecom_department_leaders WHERE corp_id = :corp_id;

-- name: wecom_tags
SELECT tag_id, tag_name FROM wecom_tags WHERE corp_id = :corp_id;

-- name: wecom_tag_users
SELECT corp_id, tag_id, userid, row_hash FROM wecom_tag_users WHERE corp_id = :corp_id;

-- name: wecom_tag_departments
SELECT corp_id, tag_id, department_id, row_hash FROM wecom_tag_departments WHERE corp_id = :corp_id;
