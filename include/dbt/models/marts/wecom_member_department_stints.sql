-- Each member's time in each department: one row per unbroken membership, joined_at to left_at
-- (NULL while it lasts). A version that only changed the sort order or the leader flag continues
-- the stint: a new stint starts where the previous version of that membership did not end.
with versions as (
    select
        *,
        lag(dbt_valid_to) over (
            partition by corp_id, userid, department_id order by dbt_valid_from
        ) as previous_valid_to
    from {{ ref('stg_wecom__user_departments_history') }}
),

numbered as (
    select
        *,
        sum(case when previous_valid_to = dbt_valid_from then 0 else 1 end) over (
            partition by corp_id, userid, department_id order by dbt_valid_from
            rows between unbounded preceding and current row
        ) as stint_number
    from versions
),

stints as (
    select
        corp_id,
        userid,
        department_id,
        stint_number,
        min(dbt_valid_from) as joined_at,
        case when count(dbt_valid_to) = count(*) then max(dbt_valid_to) end as left_at,
        count(*) as versions
    from numbered
    group by corp_id, userid, department_id, stint_number
)

select
    stints.corp_id,
    stints.userid,
    stints.department_id,
    stints.joined_at,
    stints.left_at,
    stints.versions,
    first_version.change_source as joined_by,
    first_version.run_id as joined_run_id
from stints
inner join numbered as first_version
    on first_version.corp_id = stints.corp_id
        and first_version.userid = stints.userid
        and first_version.department_id = stints.department_id
        and first_version.dbt_valid_from = stints.joined_at
