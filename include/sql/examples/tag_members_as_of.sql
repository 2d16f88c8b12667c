-- Every member who held a tag at a point in time, from the history tables: directly, or through a
-- department in the tag whose subtree (as the tree stood then) held one of the member's departments.
-- One row per (member, way); via_department_id is the tagged department for via = 'department'.
-- For today's holders use the view wecom_tag_members_expanded.
-- Binds: :corp_id, :tag_id, :as_of (a timestamp; on SQLite the fixed-width UTC text
-- 'YYYY-MM-DD HH:MM:SS.ffffff'). A version is valid from valid_from until valid_to (NULL = still).
WITH tag AS (
    SELECT corp_id, tag_id, tag_name FROM wecom_tags_history
    WHERE corp_id = :corp_id AND tag_id = :tag_id
      AND valid_from <= :as_of AND (valid_to IS NULL OR valid_to > :as_of)
),
departments AS (
    SELECT department_id, path FROM wecom_departments_history
    WHERE corp_id = :corp_id AND valid_from <= :as_of AND (valid_to IS NULL OR valid_to > :as_of)
),
memberships AS (
    SELECT userid, department_id FROM wecom_user_departments_history
    WHERE corp_id = :corp_id AND valid_from <= :as_of AND (valid_to IS NULL OR valid_to > :as_of)
)
SELECT tag.tag_id, tag.tag_name, tu.userid, 'member' AS via, CAST(NULL AS BIGINT) AS via_department_id
FROM tag
JOIN wecom_tag_users_history tu ON tu.corp_id = tag.corp_id AND tu.tag_id = tag.tag_id
 AND tu.valid_from <= :as_of AND (tu.valid_to IS NULL OR tu.valid_to > :as_of)
UNION ALL
SELECT tag.tag_id, tag.tag_name, m.userid, 'department' AS via, td.department_id AS via_department_id
FROM tag
JOIN wecom_tag_departments_history td ON td.corp_id = tag.corp_id AND td.tag_id = tag.tag_id
 AND td.valid_from <= :as_of AND (td.valid_to IS NULL OR td.valid_to > :as_of)
JOIN departments tagged ON tagged.department_id = td.department_id
JOIN departments d ON d.path LIKE tagged.path || '%'
JOIN memberships m ON m.department_id = d.department_id
ORDER BY 3, 4, 5;
