-- Every department move of one member: when they joined and left each department,
-- and whether a full sync (snapshot) or a callback recorded it. A membership
-- version that only changed its sort order or leader flag is not a move: a version
-- that starts exactly where the previous one of the same department ended is a
-- continuation. Department names are today's (wecom_departments).
-- Binds: :corp_id, :userid.
SELECT moves.moved_at, moves.move, moves.department_id, d.name AS department_name, moves.change_source
FROM (
    SELECT h.valid_from AS moved_at, 'joined' AS move, h.department_id, h.change_source, h.corp_id
    FROM wecom_user_departments_history h
    WHERE h.corp_id = :corp_id AND h.userid = :userid
      AND NOT EXISTS (SELECT 1 FROM wecom_user_departments_history p
                      WHERE p.corp_id = h.corp_id AND p.userid = h.userid
                        AND p.department_id = h.department_id AND p.valid_to = h.valid_from)
    UNION ALL
    SELECT h.valid_to, 'left', h.department_id, h.change_source, h.corp_id
    FROM wecom_user_departments_history h
    WHERE h.corp_id = :corp_id AND h.userid = :userid AND h.valid_to IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM wecom_user_departments_history n
                      WHERE n.corp_id = h.corp_id AND n.userid = h.userid
                        AND n.department_id = h.department_id AND n.valid_from = h.valid_to)
) moves
LEFT JOIN wecom_departments d ON d.corp_id = moves.corp_id AND d.department_id = moves.department_id
ORDER BY moves.moved_at, moves.move DESC, moves.department_id;
