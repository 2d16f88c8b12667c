-- The current org chart, one row per membership: the member, the department with its path by
-- name, whether the member leads it, and the member's direct leaders.
with members as (
    select * from {{ source('wecom', 'wecom_users') }}
    where not is_deleted
),

direct_leaders as (
    select
        corp_id,
        userid,
        {{ dbt.listagg("leader_userid", "','", "order by leader_userid") }} as direct_leader_userids
    from {{ source('wecom', 'wecom_user_direct_leaders') }}
    group by corp_id, userid
)

select
    membership.corp_id,
    membership.department_id,
    department.name as department_name,
    department.path as department_path,
    department.path_names as department_path_names,
    department.depth as department_depth,
    membership.userid,
    members.name as member_name,
    members.position,
    members.status,
    membership.is_main,
    membership.sort_order,
    direct_leaders.direct_leader_userids,
    coalesce(membership.is_leader, false) or leader.userid is not null as is_leader
from {{ source('wecom', 'wecom_user_departments') }} as membership
inner join members
    on members.corp_id = membership.corp_id
        and members.userid = membership.userid
inner join {{ ref('wecom_org_departments') }} as department
    on department.corp_id = membership.corp_id
        and department.department_id = membership.department_id
left join {{ source('wecom', 'wecom_department_leaders') }} as leader
    on leader.corp_id = membership.corp_id
        and leader.department_id = membership.department_id
        and leader.userid = membership.userid
left join direct_leaders
    on direct_leaders.corp_id = membership.corp_id
        and direct_leaders.userid = membership.userid
