-- What the status page reads. SELECT * on wecom_sync_runs on purpose: the page
-- shows optional columns (drift_total, drift, plan) only where the schema has them.

-- name: corps_with_runs
SELECT DISTINCT corp_id FROM wecom_sync_runs;

-- name: corps_with_events
SELECT DISTINCT corp_id FROM wecom_callback_events;

-- name: last_run
SELECT * FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = :kind
ORDER BY COALESCE(finished_at, started_at) DESC
LIMIT 1;

-- name: last_guarded_run
-- The newest run that either recorded a snapshot (merged, or unchanged: nothing to
-- delete) or was stopped by the mass-deletion guard.
SELECT * FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full' AND status IN ('success', 'partial', 'unchanged', 'guard_tripped')
ORDER BY COALESCE(finished_at, started_at) DESC
LIMIT 1;

-- name: last_snapshot_run
-- The newest run that recorded a snapshot: what the directory tables reflect, with its rights.
SELECT * FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full' AND status IN ('success', 'partial', 'unchanged')
ORDER BY COALESCE(finished_at, started_at) DESC
LIMIT 1;

-- name: full_run_history
SELECT dag_id, run_id, status, started_at, finished_at, observed_at, departments_seen, users_seen
FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full'
ORDER BY COALESCE(finished_at, started_at) DESC
LIMIT :limit;

-- name: event_counts
SELECT status, COUNT(*) AS events, MIN(received_at) AS oldest_received_at
FROM wecom_callback_events
WHERE corp_id = :corp_id
GROUP BY status;

-- name: event_errors
SELECT event_id, change_type, entity_type, status, attempts, last_error, last_received_at, run_id
FROM wecom_callback_events
WHERE corp_id = :corp_id AND status IN ('failed', 'dead')
ORDER BY last_received_at DESC, event_id DESC
LIMIT :limit;
