-- Every department move of every member: one row when a member joined a department and one when
-- they left it (a move between departments is a 'left' and a 'joined' at the same instant).
-- Department names are today's, or the last one known for a deleted department.
with stints as (
    select * from {{ ref('wecom_member_department_stints') }}
),

moves as (
    select
        corp_id,
        userid,
        department_id,
        joined_at as moved_at,
        'joined' as move_type,
        joined_by as recorded_by
    from stints
    union all
    select
        corp_id,
        userid,
        department_id,
        left_at as moved_at,
        'left' as move_type,
        null as recorded_by
    from stints
    where left_at is not null
)

select
    moves.corp_id,
    moves.userid,
    moves.moved_at,
    moves.move_type,
    moves.department_id,
    departments.name as department_name,
    moves.recorded_by
from moves
left join {{ source('wecom', 'wecom_departments') }} as departments
    on departments.corp_id = moves.corp_id
        and departments.department_id = moves.department_id
