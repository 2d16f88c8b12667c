-- The queue side of applying callbacks: which events are ready, which applied
-- events must be replayed with a late one, and the status each event ends in.
-- Binds: :corp_id, :max_attempts; lists (:keys, :event_ids) are expanded by the caller.

-- Events to decide now, oldest first (ties by arrival): pending ones and failed
-- ones that still have attempts left. Unknown events are never pending.
-- name: select_batch
SELECT event_id, status, attempts, create_time, change_type, entity_type, entity_id, new_entity_id, payload
FROM wecom_callback_events
WHERE corp_id = :corp_id
  AND status IN ('pending', 'failed')
  AND attempts < :max_attempts
  AND entity_type IN ('user', 'department', 'tag')
ORDER BY create_time, event_id
LIMIT :limit;

-- What the sensor and the trigger wait for.
-- name: count_ready
SELECT COUNT(*) FROM wecom_callback_events
WHERE corp_id = :corp_id
  AND status IN ('pending', 'failed')
  AND attempts < :max_attempts
  AND entity_type IN ('user', 'department', 'tag');

-- Applied events of some entities since a time: replayed with a late one, so the
-- result is the same as if it had arrived in order.
-- name: select_applied
SELECT event_id, status, attempts, create_time, change_type, entity_type, entity_id, new_entity_id, payload
FROM wecom_callback_events
WHERE corp_id = :corp_id AND entity_type = :entity_type AND status = 'applied'
  AND entity_id IN :keys AND create_time >= :since;

-- Applied renames since a time: an older event of the old userid belongs to the new one.
-- name: select_applied_renames
SELECT event_id, status, attempts, create_time, change_type, entity_type, entity_id, new_entity_id, payload
FROM wecom_callback_events
WHERE corp_id = :corp_id AND entity_type = 'user' AND status = 'applied'
  AND new_entity_id IS NOT NULL AND create_time >= :since;

-- A complete snapshot saw every entity: events up to its observation time are in it
-- (an unchanged one too: it found WeCom as the tables hold it).
-- name: latest_complete_snapshot
SELECT MAX(observed_at) FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full' AND status IN ('success', 'unchanged');

-- Tag events are covered only by a complete snapshot that read every tag's members
-- (its withheld_fields do not name the group "tags").
-- name: latest_tag_snapshot
SELECT MAX(observed_at) FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full' AND status IN ('success', 'unchanged')
  AND (withheld_fields IS NULL OR withheld_fields NOT LIKE '%"tags"%');

-- The guard on status leaves events another apply already decided alone.
-- name: mark_handled
UPDATE wecom_callback_events
SET status = :status, applied_at = :applied_at, run_id = :run_id, last_error = NULL
WHERE corp_id = :corp_id AND event_id IN :event_ids AND status IN ('pending', 'failed');

-- name: mark_failed
UPDATE wecom_callback_events
SET attempts = attempts + 1,
    status = CASE WHEN attempts + 1 >= :max_attempts THEN 'dead' ELSE 'failed' END,
    last_error = :last_error,
    run_id = :run_id
WHERE corp_id = :corp_id AND event_id IN :event_ids AND status IN ('pending', 'failed');

-- About a member or department outside the company's department scope: a final status with
-- the reason, never applied (and never dead: nothing went wrong).
-- name: mark_out_of_scope
UPDATE wecom_callback_events
SET status = 'out_of_scope', applied_at = :applied_at, run_id = :run_id, last_error = :reason
WHERE corp_id = :corp_id AND event_id IN :event_ids AND status IN ('pending', 'failed');
