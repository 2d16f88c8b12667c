-- Departments as callbacks change them, ordered by observed_at like members.
-- path, depth and the closure are derived from the whole tree, so after the
-- changed departments are written the tree is recomputed and only the rows
-- whose derived values differ are rewritten (a move re-paths all descendants).
-- Binds: :corp_id, :now.

-- Deleted departments keep their place in the tree (their last path); only the
-- never-placed (no parent known) are left out.
-- name: select_all
SELECT department_id, $DEPARTMENTS_VALUES, row_hash,
       is_deleted, out_of_scope, deleted_at, observed_at
FROM wecom_departments WHERE corp_id = :corp_id;

-- name: select_closure
SELECT ancestor_id, descendant_id, distance FROM wecom_department_closure WHERE corp_id = :corp_id;

-- name: drop_stage
DROP TABLE IF EXISTS stage_delta_departments;

-- replace_leaders: a department/get answer named its leaders (or the department was deleted).
-- name: create_stage
$TEMP_TABLE stage_delta_departments AS
SELECT corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
       is_deleted, out_of_scope, deleted_at, observed_at, is_deleted AS replace_leaders
FROM wecom_departments WHERE 1 = 0;

-- name: index_stage
CREATE INDEX stage_delta_departments_key ON stage_delta_departments (department_id);

-- name: drop_leaders_stage
DROP TABLE IF EXISTS stage_delta_department_leaders;

-- name: create_leaders_stage
$TEMP_TABLE stage_delta_department_leaders AS
SELECT corp_id, department_id, userid FROM wecom_department_leaders WHERE 1 = 0;

-- name: index_leaders_stage
CREATE INDEX stage_delta_department_leaders_key ON stage_delta_department_leaders (department_id, userid);

-- name: upsert
INSERT INTO wecom_departments (
    corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
    is_deleted, out_of_scope, first_seen_at, last_seen_at, deleted_at, updated_at, observed_at
)
SELECT corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
       is_deleted, out_of_scope, observed_at, observed_at, deleted_at, :now, observed_at
FROM stage_delta_departments WHERE TRUE
ON CONFLICT (corp_id, department_id) DO UPDATE SET
    $DEPARTMENTS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    is_deleted = excluded.is_deleted,
    out_of_scope = excluded.out_of_scope,
    deleted_at = excluded.deleted_at,
    last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at,
    observed_at = excluded.observed_at
WHERE wecom_departments.observed_at <= excluded.observed_at
  AND (wecom_departments.observed_at < excluded.observed_at
       OR wecom_departments.row_hash <> excluded.row_hash
       OR wecom_departments.is_deleted <> excluded.is_deleted
       OR wecom_departments.out_of_scope <> excluded.out_of_scope
       OR wecom_departments.deleted_at IS DISTINCT FROM excluded.deleted_at);

-- name: delete_stale_leaders
DELETE FROM wecom_department_leaders
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_departments s JOIN wecom_departments d
                ON d.corp_id = s.corp_id AND d.department_id = s.department_id
               AND d.observed_at = s.observed_at
              WHERE s.replace_leaders AND s.corp_id = wecom_department_leaders.corp_id
                AND s.department_id = wecom_department_leaders.department_id)
  AND NOT EXISTS (SELECT 1 FROM stage_delta_department_leaders l
                  WHERE l.corp_id = wecom_department_leaders.corp_id
                    AND l.department_id = wecom_department_leaders.department_id
                    AND l.userid = wecom_department_leaders.userid);

-- name: insert_leaders
INSERT INTO wecom_department_leaders (corp_id, department_id, userid)
SELECT l.corp_id, l.department_id, l.userid FROM stage_delta_department_leaders l
WHERE EXISTS (SELECT 1 FROM stage_delta_departments s JOIN wecom_departments d
                ON d.corp_id = s.corp_id AND d.department_id = s.department_id
               AND d.observed_at = s.observed_at
              WHERE s.replace_leaders AND s.corp_id = l.corp_id AND s.department_id = l.department_id)
ON CONFLICT (corp_id, department_id, userid) DO NOTHING;

-- WeCom only deletes empty departments; memberships still pointing at one are leftovers
-- of move events not received (yet), and a deleted department leads nobody.
-- name: delete_memberships_of_deleted
DELETE FROM wecom_user_departments
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_departments s JOIN wecom_departments d
                ON d.corp_id = s.corp_id AND d.department_id = s.department_id
               AND d.observed_at = s.observed_at
              WHERE s.is_deleted AND s.corp_id = wecom_user_departments.corp_id
                AND s.department_id = wecom_user_departments.department_id);

-- name: drop_tree_stage
DROP TABLE IF EXISTS stage_delta_department_tree;

-- name: create_tree_stage
$TEMP_TABLE stage_delta_department_tree AS
SELECT corp_id, department_id, path, depth, row_hash FROM wecom_departments WHERE 1 = 0;

-- name: index_tree_stage
CREATE INDEX stage_delta_department_tree_key ON stage_delta_department_tree (department_id);

-- Derived columns only: observed_at stays the time the department itself was observed.
-- name: update_tree
UPDATE wecom_departments
SET path = t.path, depth = t.depth, row_hash = t.row_hash, updated_at = :now
FROM stage_delta_department_tree t
WHERE wecom_departments.corp_id = t.corp_id AND wecom_departments.department_id = t.department_id;

-- name: drop_closure_stage
DROP TABLE IF EXISTS stage_delta_department_closure;

-- name: create_closure_stage
$TEMP_TABLE stage_delta_department_closure AS
SELECT corp_id, ancestor_id, descendant_id, distance FROM wecom_department_closure WHERE 1 = 0;

-- name: index_closure_stage
CREATE INDEX stage_delta_department_closure_key
    ON stage_delta_department_closure (ancestor_id, descendant_id);

-- The stage holds the rows that differ from the table: distance NULL means "remove".
-- name: delete_closure
DELETE FROM wecom_department_closure
WHERE EXISTS (SELECT 1 FROM stage_delta_department_closure s
              WHERE s.distance IS NULL AND s.corp_id = wecom_department_closure.corp_id
                AND s.ancestor_id = wecom_department_closure.ancestor_id
                AND s.descendant_id = wecom_department_closure.descendant_id);

-- name: upsert_closure
INSERT INTO wecom_department_closure (corp_id, ancestor_id, descendant_id, distance)
SELECT corp_id, ancestor_id, descendant_id, distance FROM stage_delta_department_closure
WHERE distance IS NOT NULL
ON CONFLICT (corp_id, ancestor_id, descendant_id) DO UPDATE SET distance = excluded.distance;

-- With a department scope: the departments of this apply that left it (out_of_scope in the
-- stage, and written) end the memberships in them; the members left without a membership in
-- the scope leave it as well, at the time their department left (wecom.callbacks.writer_departments).

-- name: drop_leavers_stage
DROP TABLE IF EXISTS stage_delta_scope_leavers;

-- name: create_leavers_stage
$TEMP_TABLE stage_delta_scope_leavers AS
SELECT userid, observed_at AS left_at FROM wecom_users WHERE 1 = 0;

-- name: index_leavers_stage
CREATE INDEX stage_delta_scope_leavers_key ON stage_delta_scope_leavers (userid);

-- name: find_leavers
INSERT INTO stage_delta_scope_leavers (userid, left_at)
SELECT m.userid, MAX(s.observed_at)
FROM wecom_user_departments m
JOIN stage_delta_departments s
  ON s.corp_id = m.corp_id AND s.department_id = m.department_id AND s.out_of_scope
JOIN wecom_departments d
  ON d.corp_id = s.corp_id AND d.department_id = s.department_id AND d.observed_at = s.observed_at
JOIN wecom_users u
  ON u.corp_id = m.corp_id AND u.userid = m.userid AND NOT u.is_deleted AND u.observed_at <= s.observed_at
WHERE m.corp_id = :corp_id
  AND NOT EXISTS (SELECT 1 FROM wecom_user_departments o
                  WHERE o.corp_id = m.corp_id AND o.userid = m.userid
                    AND o.department_id NOT IN (SELECT x.department_id FROM stage_delta_departments x
                                                WHERE x.out_of_scope))
GROUP BY m.userid;

-- name: count_leavers
SELECT COUNT(*) FROM stage_delta_scope_leavers;

-- name: close_leaver_versions
UPDATE wecom_users_history SET valid_to = l.left_at, ended_by = 'out_of_scope'
FROM stage_delta_scope_leavers l
WHERE wecom_users_history.corp_id = :corp_id AND wecom_users_history.userid = l.userid
  AND wecom_users_history.valid_to IS NULL AND wecom_users_history.valid_from <= l.left_at;

-- name: leave_scope
UPDATE wecom_users
SET is_deleted = TRUE, out_of_scope = TRUE, deleted_at = l.left_at, observed_at = l.left_at, updated_at = :now
FROM stage_delta_scope_leavers l
WHERE wecom_users.corp_id = :corp_id AND wecom_users.userid = l.userid;

-- name: drop_leaver_direct_leaders
DELETE FROM wecom_user_direct_leaders
WHERE corp_id = :corp_id AND userid IN (SELECT userid FROM stage_delta_scope_leavers);

-- name: drop_leaver_led_departments
DELETE FROM wecom_department_leaders
WHERE corp_id = :corp_id AND userid IN (SELECT userid FROM stage_delta_scope_leavers);

-- name: close_memberships_leaving_scope
UPDATE wecom_user_departments_history SET valid_to = s.observed_at, ended_by = 'out_of_scope'
FROM stage_delta_departments s
WHERE s.out_of_scope AND wecom_user_departments_history.corp_id = s.corp_id
  AND wecom_user_departments_history.department_id = s.department_id
  AND wecom_user_departments_history.valid_to IS NULL
  AND wecom_user_departments_history.valid_from <= s.observed_at;

-- A leaver's tag memberships and custom fields end with it (out_of_scope), as a full sync of the
-- scope ends them: the tables hold tags' members and custom fields in the scope only.
-- name: close_leaver_tag_memberships
UPDATE wecom_tag_users_history SET valid_to = l.left_at, ended_by = 'out_of_scope'
FROM stage_delta_scope_leavers l
WHERE wecom_tag_users_history.corp_id = :corp_id AND wecom_tag_users_history.userid = l.userid
  AND wecom_tag_users_history.valid_to IS NULL AND wecom_tag_users_history.valid_from <= l.left_at;

-- name: drop_leaver_tag_memberships
DELETE FROM wecom_tag_users
WHERE corp_id = :corp_id AND userid IN (SELECT userid FROM stage_delta_scope_leavers);

-- name: close_leaver_attributes
UPDATE wecom_user_attributes_history SET valid_to = l.left_at, ended_by = 'out_of_scope'
FROM stage_delta_scope_leavers l
WHERE wecom_user_attributes_history.corp_id = :corp_id AND wecom_user_attributes_history.userid = l.userid
  AND wecom_user_attributes_history.valid_to IS NULL AND wecom_user_attributes_history.valid_from <= l.left_at;

-- name: drop_leaver_attributes
DELETE FROM wecom_user_attributes
WHERE corp_id = :corp_id AND userid IN (SELECT userid FROM stage_delta_scope_leavers);

-- A deleted department, or one that left the scope, no longer holds its tags here (WeCom sends no
-- update_tag for it).
-- name: close_tag_departments_of_deleted
UPDATE wecom_tag_departments_history
SET valid_to = s.observed_at, ended_by = CASE WHEN s.out_of_scope THEN 'out_of_scope' ELSE 'deleted' END
FROM stage_delta_departments s
WHERE s.is_deleted AND wecom_tag_departments_history.corp_id = s.corp_id
  AND wecom_tag_departments_history.department_id = s.department_id
  AND wecom_tag_departments_history.valid_to IS NULL
  AND wecom_tag_departments_history.valid_from <= s.observed_at
  AND EXISTS (SELECT 1 FROM wecom_departments d WHERE d.corp_id = s.corp_id AND d.department_id = s.department_id
                AND d.observed_at = s.observed_at);

-- name: delete_tag_departments_of_deleted
DELETE FROM wecom_tag_departments
WHERE corp_id = :corp_id
  AND EXISTS (SELECT 1 FROM stage_delta_departments s JOIN wecom_departments d
                ON d.corp_id = s.corp_id AND d.department_id = s.department_id
               AND d.observed_at = s.observed_at
              WHERE s.is_deleted AND s.corp_id = wecom_tag_departments.corp_id
                AND s.department_id = wecom_tag_departments.department_id);
