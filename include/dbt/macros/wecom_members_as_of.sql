{#- Every member as of the SQL timestamp `as_of` with the memberships they had then: one row per
    (member, department), or one row with a NULL department for a member in none. Names and paths
    are the versions valid then. Use it in a model of your own for other instants:
        select * from ({{ wecom_members_as_of("cast('2026-01-01' as timestamp) at time zone 'UTC'") }}) as m
-#}
{% macro wecom_members_as_of(as_of) %}
select
    {{ as_of }} as as_of,
    u.corp_id,
    u.userid,
    u.name as member_name,
    u.position,
    u.status,
    u.main_department_id,
    m.department_id,
    d.name as department_name,
    d.path as department_path,
    m.is_main,
    m.is_leader,
    u.dbt_scd_id as member_version_id,
    m.dbt_scd_id as membership_version_id
from {{ ref('stg_wecom__users_history') }} as u
left join {{ ref('stg_wecom__user_departments_history') }} as m
    on m.corp_id = u.corp_id
    and m.userid = u.userid
    and {{ wecom_valid_at('m', as_of) }}
left join {{ ref('stg_wecom__departments_history') }} as d
    on d.corp_id = m.corp_id
    and d.department_id = m.department_id
    and {{ wecom_valid_at('d', as_of) }}
where {{ wecom_valid_at('u', as_of) }}
{% endmacro %}
