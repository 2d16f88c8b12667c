-- What the tables hold as current for a corp, for a scoped extraction to tell who left the
-- scope from who left the company (wecom.api.scope_walk). Binds: :corp_id.

-- name: departments
SELECT department_id FROM wecom_departments WHERE corp_id = :corp_id AND NOT is_deleted;

-- name: members
SELECT u.userid, m.department_id
FROM wecom_users u
LEFT JOIN wecom_user_departments m ON m.corp_id = u.corp_id AND m.userid = u.userid
WHERE u.corp_id = :corp_id AND NOT u.is_deleted;

-- A scoped callback batch: which departments the tables hold (to place the ones its events
-- name), and which of its members are current (the others may be entering the scope).
-- name: stored_departments
SELECT department_id, is_deleted FROM wecom_departments WHERE corp_id = :corp_id;

-- name: current_userids
SELECT userid FROM wecom_users WHERE corp_id = :corp_id AND NOT is_deleted AND userid IN :keys;
