-- The current org chart, one row per department that is not deleted: its path by name, its
-- leaders, and how many members it has directly and in its whole subtree.
with departments as (
    select * from {{ source('wecom', 'wecom_departments') }}
    where not is_deleted
),

closure as (
    select * from {{ source('wecom', 'wecom_department_closure') }}
),

members as (
    select * from {{ source('wecom', 'wecom_user_departments') }}
),

path_names as (
    select
        closure.corp_id,
        closure.descendant_id as department_id,
        {{ dbt.listagg(
            "coalesce(ancestor.name, " ~ dbt.cast("ancestor.department_id", dbt.type_string()) ~ ")",
            "' / '",
            "order by closure.distance desc"
        ) }} as path_names
    from closure
    inner join departments as ancestor
        on ancestor.corp_id = closure.corp_id
            and ancestor.department_id = closure.ancestor_id
    group by closure.corp_id, closure.descendant_id
),

leaders as (
    select
        leader.corp_id,
        leader.department_id,
        {{ dbt.listagg("leader.userid", "','", "order by leader.userid") }} as leader_userids,
        {{ dbt.listagg("coalesce(member.name, leader.userid)", "', '", "order by leader.userid") }} as leader_names
    from {{ source('wecom', 'wecom_department_leaders') }} as leader
    left join {{ source('wecom', 'wecom_users') }} as member
        on member.corp_id = leader.corp_id
            and member.userid = leader.userid
    group by leader.corp_id, leader.department_id
),

direct_members as (
    select
        corp_id,
        department_id,
        count(*) as direct_member_count
    from members
    group by corp_id, department_id
),

subtree_members as (
    select
        closure.corp_id,
        closure.ancestor_id as department_id,
        count(distinct members.userid) as subtree_member_count
    from closure
    inner join members
        on members.corp_id = closure.corp_id
            and members.department_id = closure.descendant_id
    group by closure.corp_id, closure.ancestor_id
)

select
    departments.corp_id,
    departments.department_id,
    departments.name,
    departments.name_en,
    departments.parent_id,
    parent.name as parent_name,
    departments.sort_order,
    departments.depth,
    departments.path,
    path_names.path_names,
    leaders.leader_userids,
    leaders.leader_names,
    departments.observed_at,
    coalesce(direct_members.direct_member_count, 0) as direct_member_count,
    coalesce(subtree_members.subtree_member_count, 0) as subtree_member_count
from departments
left join departments as parent
    on parent.corp_id = departments.corp_id
        and parent.department_id = departments.parent_id
left join path_names
    on path_names.corp_id = departments.corp_id
        and path_names.department_id = departments.department_id
left join leaders
    on leaders.corp_id = departments.corp_id
        and leaders.department_id = departments.department_id
left join direct_members
    on direct_members.corp_id = departments.corp_id
        and direct_members.department_id = departments.department_id
left join subtree_members
    on subtree_members.corp_id = departments.corp_id
        and subtree_members.department_id = departments.department_id
