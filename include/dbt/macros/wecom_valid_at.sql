{#- True when the snapshot-convention version `alias` was valid at the SQL timestamp `at`:
    dbt_valid_from inclusive, dbt_valid_to exclusive, NULL dbt_valid_to still valid. -#}
{% macro wecom_valid_at(alias, at) -%}
    ({{ alias }}.dbt_valid_from <= {{ at }} and ({{ alias }}.dbt_valid_to is null or {{ alias }}.dbt_valid_to > {{ at }}))
{%- endmacro %}
