{#- dbt's relationships test within one company: every non-NULL value of the column names a row
    of `to` with the same corp_id (several companies share a database and their ids may collide).
    `to_where` narrows the rows it may name, such as "not is_deleted". -#}
{% test wecom_in_corp(model, column_name, to, field, to_where=none) %}
with parents as (
    select * from {{ to }}
    where {{ to_where or 'true' }}
)

select
    child.corp_id,
    child.{{ column_name }}
from (select * from {{ model }}) as child
where
    child.{{ column_name }} is not null
    and not exists (
        select 1
        from parents
        where parents.corp_id = child.corp_id and parents.{{ field }} = child.{{ column_name }}
    )
{% endtest %}
