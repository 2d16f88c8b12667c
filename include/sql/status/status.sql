-- What the status page reads. SELECT * on wecom_sync_runs on purpose: the page
-- shows optional columns (drift_total, drift, plan) only where the schema has them.

-- name: run_sources
-- Which DAGs wrote runs of which corp: a DAG id carries its company's name.
SELECT corp_id, dag_id, MAX(COALESCE(finished_at, started_at)) AS last_at
FROM wecom_sync_runs
GROUP BY corp_id, dag_id;

-- name: event_sources
-- Which wecom connections received callbacks of which corp (events can come before any run).
SELECT DISTINCT corp_id, conn_id FROM wecom_callback_events;

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
-- The newest run that recorded a snapshot: the last good sync, what the directory
-- tables reflect, with its rights.
SELECT * FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full' AND status IN ('success', 'partial', 'unchanged')
ORDER BY COALESCE(finished_at, started_at) DESC
LIMIT 1;

-- name: full_run_history
SELECT dag_id, run_id, status, started_at, finished_at, observed_at, departments_seen, users_seen, tags_seen, message
FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full'
ORDER BY COALESCE(finished_at, started_at) DESC
LIMIT :limit;

-- name: event_counts
SELECT status, COUNT(*) AS events, MIN(received_at) AS oldest_received_at
FROM wecom_callback_events
WHERE corp_id = :corp_id
GROUP BY status;

-- name: events_in_status
-- The newest failed (to be retried) or dead (given up: the dead letters) events, with why.
SELECT event_id, change_type, entity_type, entity_id, status, attempts, last_error, last_received_at, run_id
FROM wecom_callback_events
WHERE corp_id = :corp_id AND status = :status
ORDER BY last_received_at DESC, event_id DESC
LIMIT :limit;
