-- wecom_user_departments_history as a dbt snapshot: every column, plus dbt's snapshot columns over
-- valid_from / valid_to (docs/data-platform.md, "Snapshot conventions").
select
    history.*,
    {{ snapshot_hash_arguments(['corp_id', 'userid', 'department_id', 'valid_from']) }} as dbt_scd_id,
    history.valid_from as dbt_updated_at,
    history.valid_from as dbt_valid_from,
    history.valid_to as dbt_valid_to
from {{ source('wecom', 'wecom_user_departments_history') }} as history
