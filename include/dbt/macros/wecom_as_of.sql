{#- The instant of the var wecom_as_of as a SQL timestamp with time zone: an ISO 8601 date or
    timestamp, UTC when it has no offset; the run's own time when the var is null. -#}
{% macro wecom_as_of() -%}
    {%- set value = var('wecom_as_of') -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {{- return(dbt.current_timestamp()) -}}
    {%- endif -%}
    {%- set value = value | string | trim -%}
    {%- set iso = modules.re.match(
        '^(\\d{4}-\\d{2}-\\d{2}([ T]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?)?)(Z|[+-]\\d{2}(:?\\d{2})?)?$', value
    ) -%}
    {%- if not iso -%}
        {{- exceptions.raise_compiler_error(
            "var wecom_as_of: '" ~ value ~ "' is not an ISO 8601 date or timestamp"
            ~ " (for example 2026-03-01 or 2026-03-01T09:30:00+08:00)"
        ) -}}
    {%- endif -%}
    {%- if iso.group(5) -%}
        cast('{{ value }}' as timestamp with time zone)
    {%- else -%}
        (cast('{{ value }}' as timestamp) at time zone 'UTC')
    {%- endif -%}
{%- endmacro %}
