-- Callback-side SCD type 2 history: a change at :valid_from (the event's
-- CreateTime) ends the version that covered that time and opens one lasting
-- until the next known version (NULL when it is the latest). A late event thus
-- slots in between versions without overlap, and a version replayed at the same
-- time has its content replaced. Executed per changed row. Binds: :corp_id,
-- :valid_from, :run_id and the row's columns; the closes bind :ended_by, why the
-- version ends there ('deleted', 'out_of_scope', or NULL when a version follows).

-- name: close_user
UPDATE wecom_users_history SET valid_to = :valid_from, ended_by = :ended_by
WHERE corp_id = :corp_id AND userid = :userid AND valid_from < :valid_from
  AND (valid_to IS NULL OR valid_to > :valid_from);

-- name: upsert_user
INSERT INTO wecom_users_history (
    corp_id, userid, $USERS_VALUES, row_hash,
    valid_from, valid_to, change_source, run_id
) VALUES (
    :corp_id, :userid, $USERS_BINDS, :row_hash,
    :valid_from,
    (SELECT MIN(h.valid_from) FROM wecom_users_history h
     WHERE h.corp_id = :corp_id AND h.userid = :userid AND h.valid_from > :valid_from),
    'callback', :run_id
)
ON CONFLICT (corp_id, userid, valid_from) DO UPDATE SET
    $USERS_FROM_EXCLUDED, row_hash = excluded.row_hash, valid_to = excluded.valid_to, ended_by = NULL,
    change_source = excluded.change_source, run_id = excluded.run_id;

-- A version that began at the very time its entity was deleted never held.
-- name: drop_user_version
DELETE FROM wecom_users_history
WHERE corp_id = :corp_id AND userid = :userid AND valid_to IS NULL AND valid_from = :valid_from;

-- name: close_department
UPDATE wecom_departments_history SET valid_to = :valid_from, ended_by = :ended_by
WHERE corp_id = :corp_id AND department_id = :department_id AND valid_from < :valid_from
  AND (valid_to IS NULL OR valid_to > :valid_from);

-- name: upsert_department
INSERT INTO wecom_departments_history (
    corp_id, department_id, $DEPARTMENTS_VALUES, row_hash,
    valid_from, valid_to, change_source, run_id
) VALUES (
    :corp_id, :department_id, $DEPARTMENTS_BINDS, :row_hash,
    :valid_from,
    (SELECT MIN(h.valid_from) FROM wecom_departments_history h
     WHERE h.corp_id = :corp_id AND h.department_id = :department_id AND h.valid_from > :valid_from),
    'callback', :run_id
)
ON CONFLICT (corp_id, department_id, valid_from) DO UPDATE SET
    $DEPARTMENTS_FROM_EXCLUDED,
    row_hash = excluded.row_hash, valid_to = excluded.valid_to, ended_by = NULL,
    change_source = excluded.change_source, run_id = excluded.run_id;

-- name: drop_department_version
DELETE FROM wecom_departments_history
WHERE corp_id = :corp_id AND department_id = :department_id AND valid_to IS NULL AND valid_from = :valid_from;

-- name: close_membership
UPDATE wecom_user_departments_history SET valid_to = :valid_from, ended_by = :ended_by
WHERE corp_id = :corp_id AND userid = :userid AND department_id = :department_id
  AND valid_from < :valid_from
  AND (valid_to IS NULL OR valid_to > :valid_from);

-- name: upsert_membership
INSERT INTO wecom_user_departments_history (
    corp_id, userid, department_id, $MEMBERSHIPS_VALUES, row_hash,
    valid_from, valid_to, change_source, run_id
) VALUES (
    :corp_id, :userid, :department_id, $MEMBERSHIPS_BINDS, :row_hash,
    :valid_from,
    (SELECT MIN(h.valid_from) FROM wecom_user_departments_history h
     WHERE h.corp_id = :corp_id AND h.userid = :userid AND h.department_id = :department_id
       AND h.valid_from > :valid_from),
    'callback', :run_id
)
ON CONFLICT (corp_id, userid, department_id, valid_from) DO UPDATE SET
    $MEMBERSHIPS_FROM_EXCLUDED,
    row_hash = excluded.row_hash, valid_to = excluded.valid_to, ended_by = NULL,
    change_source = excluded.change_source, run_id = excluded.run_id;

-- name: drop_membership_version
DELETE FROM wecom_user_departments_history
WHERE corp_id = :corp_id AND userid = :userid AND department_id = :department_id
  AND valid_to IS NULL AND valid_from = :valid_from;

-- A replayed version whose content equals the one before it opens nothing, but a version
-- an earlier apply wrote at that very time (from fewer events) gets the replayed content.
-- name: refresh_user
UPDATE wecom_users_history SET
    $USERS_FROM_BINDS, row_hash = :row_hash, run_id = :run_id
WHERE corp_id = :corp_id AND userid = :userid AND valid_from = :valid_from AND row_hash <> :row_hash;

-- name: refresh_membership
UPDATE wecom_user_departments_history SET
    $MEMBERSHIPS_FROM_BINDS, row_hash = :row_hash, run_id = :run_id
WHERE corp_id = :corp_id AND userid = :userid AND department_id = :department_id
  AND valid_from = :valid_from AND row_hash <> :row_hash;

-- Tags and their memberships, as for members and memberships above.
-- name: close_tag
UPDATE wecom_tags_history SET valid_to = :valid_from, ended_by = :ended_by
WHERE corp_id = :corp_id AND tag_id = :tag_id AND valid_from < :valid_from
  AND (valid_to IS NULL OR valid_to > :valid_from);

-- name: upsert_tag
INSERT INTO wecom_tags_history (corp_id, tag_id, $TAGS_VALUES, row_hash, valid_from, valid_to, change_source, run_id)
VALUES (
    :corp_id, :tag_id, $TAGS_BINDS, :row_hash, :valid_from,
    (SELECT MIN(h.valid_from) FROM wecom_tags_history h
     WHERE h.corp_id = :corp_id AND h.tag_id = :tag_id AND h.valid_from > :valid_from),
    'callback', :run_id
)
ON CONFLICT (corp_id, tag_id, valid_from) DO UPDATE SET
    $TAGS_FROM_EXCLUDED, row_hash = excluded.row_hash, valid_to = excluded.valid_to, ended_by = NULL,
    change_source = excluded.change_source, run_id = excluded.run_id;

-- name: close_tag_user
UPDATE wecom_tag_users_history SET valid_to = :valid_from, ended_by = :ended_by
WHERE corp_id = :corp_id AND tag_id = :tag_id AND userid = :userid AND valid_from < :valid_from
  AND (valid_to IS NULL OR valid_to > :valid_from);

-- name: upsert_tag_user
INSERT INTO wecom_tag_users_history (corp_id, tag_id, userid, row_hash, valid_from, valid_to, change_source, run_id)
VALUES (
    :corp_id, :tag_id, :userid, :row_hash, :valid_from,
    (SELECT MIN(h.valid_from) FROM wecom_tag_users_history h
     WHERE h.corp_id = :corp_id AND h.tag_id = :tag_id AND h.userid = :userid AND h.valid_from > :valid_from),
    'callback', :run_id
)
ON CONFLICT (corp_id, tag_id, userid, valid_from) DO UPDATE SET
    row_hash = excluded.row_hash, valid_to = excluded.valid_to, ended_by = NULL,
    change_source = excluded.change_source, run_id = excluded.run_id;

-- name: drop_tag_user_version
DELETE FROM wecom_tag_users_history
WHERE corp_id = :corp_id AND tag_id = :tag_id AND userid = :userid AND valid_to IS NULL AND valid_from = :valid_from;

-- name: close_tag_department
UPDATE wecom_tag_departments_history SET valid_to = :valid_from, ended_by = :ended_by
WHERE corp_id = :corp_id AND tag_id = :tag_id AND department_id = :department_id AND valid_from < :valid_from
  AND (valid_to IS NULL OR valid_to > :valid_from);

-- name: upsert_tag_department
INSERT INTO wecom_tag_departments_history (
    corp_id, tag_id, department_id, row_hash, valid_from, valid_to, change_source, run_id
) VALUES (
    :corp_id, :tag_id, :department_id, :row_hash, :valid_from,
    (SELECT MIN(h.valid_from) FROM wecom_tag_departments_history h
     WHERE h.corp_id = :corp_id AND h.tag_id = :tag_id AND h.department_id = :department_id
       AND h.valid_from > :valid_from),
    'callback', :run_id
)
ON CONFLICT (corp_id, tag_id, department_id, valid_from) DO UPDATE SET
    row_hash = excluded.row_hash, valid_to = excluded.valid_to, ended_by = NULL,
    change_source = excluded.change_source, run_id = excluded.run_id;

-- name: drop_tag_department_version
DELETE FROM wecom_tag_departments_history
WHERE corp_id = :corp_id AND tag_id = :tag_id AND department_id = :department_id
  AND valid_to IS NULL AND valid_from = :valid_from;

-- Custom fields, as for memberships.
-- name: close_attribute
UPDATE wecom_user_attributes_history SET valid_to = :valid_from, ended_by = :ended_by
WHERE corp_id = :corp_id AND userid = :userid AND attr_name = :attr_name AND valid_from < :valid_from
  AND (valid_to IS NULL OR valid_to > :valid_from);

-- name: upsert_attribute
INSERT INTO wecom_user_attributes_history (
    corp_id, userid, attr_name, $ATTRIBUTES_VALUES, row_hash, valid_from, valid_to, change_source, run_id
) VALUES (
    :corp_id, :userid, :attr_name, $ATTRIBUTES_BINDS, :row_hash, :valid_from,
    (SELECT MIN(h.valid_from) FROM wecom_user_attributes_history h
     WHERE h.corp_id = :corp_id AND h.userid = :userid AND h.attr_name = :attr_name AND h.valid_from > :valid_from),
    'callback', :run_id
)
ON CONFLICT (corp_id, userid, attr_name, valid_from) DO UPDATE SET
    $ATTRIBUTES_FROM_EXCLUDED, row_hash = excluded.row_hash, valid_to = excluded.valid_to, ended_by = NULL,
    change_source = excluded.change_source, run_id = excluded.run_id;

-- name: drop_attribute_version
DELETE FROM wecom_user_attributes_history
WHERE corp_id = :corp_id AND userid = :userid AND attr_name = :attr_name
  AND valid_to IS NULL AND valid_from = :valid_from;
