-- Count a redelivery of an event already stored: delivery_count and the last
-- arrival only. Binds: :corp_id, :dedup_key, :received_at.

-- PostgreSQL: a row another transaction holds (the apply DAG marking it, a load
-- superseding it) is skipped rather than waited for, so a redelivery never makes
-- the receiver wait on a lock; the count is best effort, the row is already safe.
-- name: postgresql
UPDATE wecom_callback_events
SET delivery_count = delivery_count + 1, last_received_at = :received_at
WHERE event_id = (
    SELECT event_id FROM wecom_callback_events
    WHERE corp_id = :corp_id AND dedup_key = :dedup_key
    FOR UPDATE SKIP LOCKED
);

-- SQLite has no row locks (one writer at a time, bounded by the busy timeout).
-- name: sqlite
UPDATE wecom_callback_events
SET delivery_count = delivery_count + 1, last_received_at = :received_at
WHERE corp_id = :corp_id AND dedup_key = :dedup_key;
