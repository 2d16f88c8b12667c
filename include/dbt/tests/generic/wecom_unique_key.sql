{#- No two rows share the values of `columns` (a composite key; NULLs count as equal values). -#}
{% test wecom_unique_key(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows_with_this_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
