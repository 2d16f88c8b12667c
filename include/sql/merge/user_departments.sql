-- Replace the memberships of the members this snapshot saw (all members when
-- the snapshot is complete), leaving alone members a newer callback touched,
-- and keep their history. Binds: :corp_id, :observed_at, :now, :complete, :run_id.
-- A membership whose member or department left the scope (the scope exits) ends as
-- 'out_of_scope' in its history, any other as 'deleted'.

-- name: create_stage
$TEMP_TABLE stage_wecom_user_departments AS
SELECT corp_id, userid, department_id, $MEMBERSHIPS_VALUES, row_hash
FROM wecom_user_departments WHERE 1 = 0;

-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_user_departments_key
    ON stage_wecom_user_departments (corp_id, userid, department_id);

-- name: drop_newer
DELETE FROM stage_wecom_user_departments
WHERE userid IN (
    SELECT u.userid FROM wecom_users u WHERE u.corp_id = :corp_id AND u.observed_at > :observed_at
);

-- name: create_diff
$TEMP_TABLE diff_wecom_user_departments AS
SELECT 'inserted' AS change, s.userid AS userid, s.department_id AS department_id, CAST(s.userid AS TEXT) || ':' || CAST(s.department_id AS TEXT) AS entity
FROM stage_wecom_user_departments s
WHERE NOT EXISTS (SELECT 1 FROM wecom_user_departments t WHERE t.corp_id = s.corp_id AND t.userid = s.userid AND t.department_id = s.department_id)
UNION ALL
SELECT 'updated', s.userid, s.department_id, CAST(s.userid AS TEXT) || ':' || CAST(s.department_id AS TEXT)
FROM stage_wecom_user_departments s JOIN wecom_user_departments t ON t.corp_id = s.corp_id AND t.userid = s.userid AND t.department_id = s.department_id
WHERE t.row_hash <> s.row_hash
UNION ALL
SELECT 'deleted', t.userid, t.department_id, CAST(t.userid AS TEXT) || ':' || CAST(t.department_id AS TEXT)
FROM wecom_user_departments t
WHERE t.corp_id = :corp_id
  AND (:complete OR t.userid IN (SELECT s.userid FROM stage_wecom_users s))
  AND NOT EXISTS (SELECT 1 FROM wecom_users o WHERE o.corp_id = t.corp_id
                    AND o.userid = t.userid AND o.observed_at > :observed_at)
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_user_departments s WHERE s.corp_id = t.corp_id AND s.userid = t.userid AND s.department_id = t.department_id);

-- name: history_close
UPDATE wecom_user_departments_history SET valid_to = :observed_at,
    ended_by = CASE
        WHEN (userid, department_id) IN (SELECT userid, department_id FROM diff_wecom_user_departments
                                         WHERE change = 'updated') THEN NULL
        WHEN userid IN (SELECT userid FROM stage_scope_exit_users)
          OR department_id IN (SELECT department_id FROM stage_scope_exit_departments) THEN 'out_of_scope'
        ELSE 'deleted' END
WHERE corp_id = :corp_id AND valid_to IS NULL
  AND (userid, department_id) IN (SELECT userid, department_id FROM diff_wecom_user_departments WHERE change IN ('updated', 'deleted'));

-- name: history_open
INSERT INTO wecom_user_departments_history (
    corp_id, userid, department_id, $MEMBERSHIPS_VALUES, row_hash,
    valid_from, valid_to, change_source, run_id
)
SELECT corp_id, userid, department_id, $MEMBERSHIPS_VALUES, row_hash,
       :observed_at, NULL, 'snapshot', :run_id
FROM stage_wecom_user_departments s
WHERE (s.userid, s.department_id) IN (SELECT userid, department_id FROM diff_wecom_user_departments WHERE change IN ('inserted', 'updated'))
ON CONFLICT (corp_id, userid, department_id, valid_from) DO UPDATE SET
    $MEMBERSHIPS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    valid_to = NULL,
    ended_by = NULL,
    change_source = excluded.change_source,
    run_id = excluded.run_id;

-- name: upsert
INSERT INTO wecom_user_departments (
    corp_id, userid, department_id, $MEMBERSHIPS_VALUES, row_hash, updated_at
)
SELECT corp_id, userid, department_id, $MEMBERSHIPS_VALUES, row_hash, :now
FROM stage_wecom_user_departments WHERE TRUE
ON CONFLICT (corp_id, userid, department_id) DO UPDATE SET
    $MEMBERSHIPS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    updated_at = excluded.updated_at
WHERE wecom_user_departments.row_hash <> excluded.row_hash;

-- name: delete
DELETE FROM wecom_user_departments
WHERE corp_id = :corp_id
  AND (userid, department_id) IN (SELECT userid, department_id FROM diff_wecom_user_departments WHERE change IN ('deleted'));
