-- Departments as callbacks change them, ordered by observed_at like members.
-- path, depth and the closure are derived from the whole tree, so after the
-- changed departments are written the tree is recomputed and only the rows
-- whose derived values differ are rewritten (a move re-paths all descendants).
-- Binds: :corp_id, :now.

-- Deleted departments keep their place in the tree (their last path); only the
-- never-placed (no parent known) are left out.
-- name: select_all
SELECT department_id, $DEPARTMENTS_VALUES, row_hash,
       is_deleted, deleted_at, observed_at
FROM wecom_departments WHERE corp_id = :corp_id;

-- name: select_closure
SELECT ancestor_id, descendant_id, distance FROM wecom_department_closure WHERE corp_id = :corp_id;

-- name: drop_stage
DROP TABLE IF EXISTS stage_delta_departments;

-- replace_leaders: a department/get answer named its leaders (or the department was deleted).
-- name: create_stage
$TEMP_TABLE stage_delta_departments AS
SELECT corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
       is_deleted, deleted_at, observed_at, is_deleted AS replace_leaders
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
    is_deleted, first_seen_at, last_seen_at, deleted_at, updated_at, observed_at
)
SELECT corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
       is_deleted, observed_at, observed_at, deleted_at, :now, observed_at
FROM stage_delta_departments WHERE TRUE
ON CONFLICT (corp_id, department_id) DO UPDATE SET
    $DEPARTMENTS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    is_deleted = excluded.is_deleted,
    deleted_at = excluded.deleted_at,
    last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at,
    observed_at = excluded.observed_at
WHERE wecom_departments.observed_at <= excluded.observed_at
  AND (wecom_departments.observed_at < excluded.observed_at
       OR wecom_departments.row_hash <> excluded.row_hash
       OR wecom_departments.is_deleted <> excluded.is_deleted
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
