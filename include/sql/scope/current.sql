-- What the tables hold as current for a corp, for a scoped extraction to tell who left the
-- scope from who left the company (wecom.api.scope_walk). Binds: :corp_id.

-- name: departments
SELECT department_id FROM wecom_departments WHERE corp_id = :corp_id AND NOT is_deleted;

-- name: members
SELECT u.userid, m.department_id
FROM wecom_users u
LEFT JOIN wecom_user_departments m ON m.corp_id = u.corp_id AND m.userid = u.userid
WHERE u.corp_id = :corp_id AND NOT u.is_deleted;
