-- Record (or re-record, when a run is retried or cleared) one sync run.
INSERT INTO wecom_sync_runs (
    dag_id, run_id, corp_id, kind, logical_date, observed_at, started_at, finished_at, status,
    strategy, strategy_reason, api_calls, api_calls_by_endpoint, throttled,
    departments_inserted, departments_updated, departments_deleted, departments_revived,
    users_inserted, users_updated, users_deleted, users_revived,
    memberships_inserted, memberships_updated, memberships_deleted,
    departments_seen, users_seen, message
) VALUES (
    :dag_id, :run_id, :corp_id, :kind, :logical_date, :observed_at, :started_at, :finished_at, :status,
    :strategy, :strategy_reason, :api_calls, :api_calls_by_endpoint, :throttled,
    :departments_inserted, :departments_updated, :departments_deleted, :departments_revived,
    :users_inserted, :users_updated, :users_deleted, :users_revived,
    :memberships_inserted, :memberships_updated, :memberships_deleted,
    :departments_seen, :users_seen, :message
)
ON CONFLICT (dag_id, run_id) DO UPDATE SET
    corp_id = excluded.corp_id,
    kind = excluded.kind,
    logical_date = excluded.logical_date,
    observed_at = excluded.observed_at,
    started_at = excluded.started_at,
    finished_at = excluded.finished_at,
    status = excluded.status,
    strategy = excluded.strategy,
    strategy_reason = excluded.strategy_reason,
    api_calls = excluded.api_calls,
    api_calls_by_endpoint = excluded.api_calls_by_endpoint,
    throttled = excluded.throttled,
    departments_inserted = excluded.departments_inserted,
    departments_updated = excluded.departments_updated,
    departments_deleted = excluded.departments_deleted,
    departments_revived = excluded.departments_revived,
    users_inserted = excluded.users_inserted,
    users_updated = excluded.users_updated,
    users_deleted = excluded.users_deleted,
    users_revived = excluded.users_revived,
    memberships_inserted = excluded.memberships_inserted,
    memberships_updated = excluded.memberships_updated,
    memberships_deleted = excluded.memberships_deleted,
    departments_seen = excluded.departments_seen,
    users_seen = excluded.users_seen,
    message = excluded.message;
