-- Who holds each tag now, one row per tag and member: directly (the tag's members) or through a
-- department of the tag, whose whole subtree holds it. Deleted tags and members hold nothing.
with tags as (
    select * from {{ source('wecom', 'wecom_tags') }}
    where not is_deleted
),

members as (
    select * from {{ source('wecom', 'wecom_users') }}
    where not is_deleted
),

ways as (
    select
        corp_id,
        tag_id,
        userid,
        cast(null as bigint) as via_department_id
    from {{ source('wecom', 'wecom_tag_users') }}
    union all
    select
        tagged.corp_id,
        tagged.tag_id,
        membership.userid,
        tagged.department_id as via_department_id
    from {{ source('wecom', 'wecom_tag_departments') }} as tagged
    inner join {{ source('wecom', 'wecom_department_closure') }} as closure
        on
            closure.corp_id = tagged.corp_id
            and closure.ancestor_id = tagged.department_id
    inner join {{ source('wecom', 'wecom_user_departments') }} as membership
        on
            membership.corp_id = closure.corp_id
            and membership.department_id = closure.descendant_id
)

select
    ways.corp_id,
    ways.tag_id,
    tags.tag_name,
    ways.userid,
    members.name as member_name,
    count(*) - count(ways.via_department_id) > 0 as holds_directly,
    count(distinct ways.via_department_id) as via_department_count
from ways
inner join tags
    on
        tags.corp_id = ways.corp_id
        and tags.tag_id = ways.tag_id
inner join members
    on
        members.corp_id = ways.corp_id
        and members.userid = ways.userid
group by ways.corp_id, ways.tag_id, tags.tag_name, ways.userid, members.name
