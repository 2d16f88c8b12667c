-- The org chart as of a point in time: every department that existed then, with
-- the members it had then (a department without members appears once, with NULLs).
-- A version is valid from valid_from (inclusive) until valid_to (exclusive; NULL = still).
-- Binds: :corp_id, :as_of (a timestamp; on SQLite the fixed-width UTC text
-- 'YYYY-MM-DD HH:MM:SS.ffffff').
SELECT d.department_id,
       d.name AS department_name,
       d.parent_id,
       d.path,
       d.depth,
       m.userid,
       u.name AS member_name,
       u.position,
       m.is_leader,
       m.is_main
FROM wecom_departments_history d
LEFT JOIN wecom_user_departments_history m
       ON m.corp_id = d.corp_id AND m.department_id = d.department_id
      AND m.valid_from <= :as_of AND (m.valid_to IS NULL OR m.valid_to > :as_of)
LEFT JOIN wecom_users_history u
       ON u.corp_id = m.corp_id AND u.userid = m.userid
      AND u.valid_from <= :as_of AND (u.valid_to IS NULL OR u.valid_to > :as_of)
WHERE d.corp_id = :corp_id
  AND d.valid_from <= :as_of AND (d.valid_to IS NULL OR d.valid_to > :as_of)
ORDER BY d.path, m.userid;
