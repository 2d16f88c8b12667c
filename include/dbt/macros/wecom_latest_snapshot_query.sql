{#- Freshness of the directory tables: the observation time of the stalest company's newest
    snapshot (loaded, partial or unchanged). Unchanged rows are never rewritten, so the rows'
    own timestamps stand still while nothing changes in WeCom; the snapshot confirms them all.
    Rendered when `dbt source freshness` runs, as the table's loaded_at_query. -#}
{% macro wecom_latest_snapshot_query() %}
select min(latest_snapshot_at)
from (
    select corp_id, max(observed_at) as latest_snapshot_at
    from {{ source('wecom', 'wecom_sync_runs') }}
    where kind = 'full' and status in ('success', 'partial', 'unchanged')
    group by corp_id
) as companies
{% endmacro %}
