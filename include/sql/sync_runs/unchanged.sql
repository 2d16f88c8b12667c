-- What decides whether a complete snapshot may be recorded as unchanged (nothing
-- transformed or loaded): the tables must still be exactly what the newest
-- recorded snapshot made them, and the new snapshot must hold the same records.

-- name: last_snapshot
-- The newest snapshot recorded for the corp, other than this run's own.
SELECT dag_id, run_id, status, observed_at, snapshot_digest FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full' AND status IN ('success', 'partial', 'unchanged')
  AND NOT (dag_id = :dag_id AND run_id = :run_id)
ORDER BY observed_at DESC
LIMIT 1;

-- name: callback_writes
-- Callback events that changed the tables since that snapshot was observed, or
-- are still waiting to (a load would supersede those).
SELECT COUNT(*) FROM wecom_callback_events
WHERE corp_id = :corp_id
  AND (status IN ('pending', 'failed')
       OR (status = 'applied' AND (applied_at >= :since OR create_time >= :since)));

-- name: live_rows
-- What the current tables hold: a row added or removed by hand shows up here.
SELECT
    (SELECT COUNT(*) FROM wecom_departments WHERE corp_id = :corp_id AND NOT is_deleted) AS departments,
    (SELECT COUNT(*) FROM wecom_users WHERE corp_id = :corp_id AND NOT is_deleted) AS users;
