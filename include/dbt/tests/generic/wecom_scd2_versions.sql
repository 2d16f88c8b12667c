{#- The versions of each `key` form one timeline, as dbt snapshots do: every version ends after it
    starts, the next version starts no earlier than the previous one ends, and only the last
    version may be open (valid_to NULL). Gaps are allowed: a deleted entity has none until revived. -#}
{% test wecom_scd2_versions(model, key) %}
with versions as (
    select
        {{ key | join(', ') }},
        valid_from,
        valid_to,
        lead(valid_from) over (
            partition by {{ key | join(', ') }} order by valid_from
        ) as next_valid_from
    from {{ model }}
)

select *
from versions
where valid_to <= valid_from
   or (next_valid_from is not null and (valid_to is null or valid_to > next_valid_from))
{% endtest %}
