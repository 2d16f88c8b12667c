-- The current departments and members a scoped snapshot found outside the company's
-- department scope, still in WeCom (wecom.api.scope_walk.confirm_exits): the merge
-- marks them out_of_scope instead of deleted. Empty for the whole company.

-- name: drop_departments
DROP TABLE IF EXISTS stage_scope_exit_departments;

-- name: drop_users
DROP TABLE IF EXISTS stage_scope_exit_users;

-- name: create_departments
$TEMP_TABLE stage_scope_exit_departments AS
SELECT department_id FROM wecom_departments WHERE 1 = 0;

-- name: create_users
$TEMP_TABLE stage_scope_exit_users AS
SELECT userid FROM wecom_users WHERE 1 = 0;

-- name: insert_department
INSERT INTO stage_scope_exit_departments (department_id) VALUES (:id);

-- name: insert_user
INSERT INTO stage_scope_exit_users (userid) VALUES (:id);
