-- What decides whether a complete snapshot may be recorded as unchanged (nothing
-- transformed or loaded): the tables must still be exactly what the newest
-- recorded snapshot (latest_full_snapshot.sql) made them, and the new snapshot
-- must hold the same records.

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
    (SELECT COUNT(*) FROM wecom_users WHERE corp_id = :corp_id AND NOT is_deleted) AS users,
    (SELECT COUNT(*) FROM wecom_tags WHERE corp_id = :corp_id AND NOT is_deleted) AS tags;
