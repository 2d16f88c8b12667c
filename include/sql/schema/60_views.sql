-- wecom_tag_members_expanded: every member who effectively holds a tag, now. A member holds it
-- directly (via = 'member'), or through a department in the tag whose subtree holds one of the
-- member's departments (via = 'department', via_department_id = the tagged department). A member
-- reached several ways has one row per way: SELECT DISTINCT userid ... WHERE tag_id = X for the set.
-- Deleted tags and members who left the company hold nothing; a tag member the member list did
-- not contain (created during a walk) is listed as the tag says.
$CREATE_VIEW wecom_tag_members_expanded AS
SELECT t.corp_id, t.tag_id, t.tag_name, tu.userid, 'member' AS via, CAST(NULL AS BIGINT) AS via_department_id
FROM wecom_tags t
JOIN wecom_tag_users tu ON tu.corp_id = t.corp_id AND tu.tag_id = t.tag_id
WHERE NOT t.is_deleted
  AND NOT EXISTS (SELECT 1 FROM wecom_users u WHERE u.corp_id = tu.corp_id AND u.userid = tu.userid AND u.is_deleted)
UNION ALL
SELECT t.corp_id, t.tag_id, t.tag_name, m.userid, 'department' AS via, td.department_id AS via_department_id
FROM wecom_tags t
JOIN wecom_tag_departments td ON td.corp_id = t.corp_id AND td.tag_id = t.tag_id
JOIN wecom_department_closure c ON c.corp_id = td.corp_id AND c.ancestor_id = td.department_id
JOIN wecom_user_departments m ON m.corp_id = c.corp_id AND m.department_id = c.descendant_id
WHERE NOT t.is_deleted
  AND NOT EXISTS (SELECT 1 FROM wecom_users u WHERE u.corp_id = m.corp_id AND u.userid = m.userid AND u.is_deleted);
