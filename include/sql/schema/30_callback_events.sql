-- Contact-change callbacks as received: one row per distinct decrypted message.
-- WeCom redelivers until it gets a 200 and its documented key (FromUserName +
-- CreateTime) collides, so dedup_key is the sha256 of the decrypted message and
-- a redelivery only bumps delivery_count (best effort: a row another transaction
-- holds is not waited for). The receiver inserts rows as pending
-- (unknown change types as ignored, kept for audit); the apply
-- DAG moves them to applied, superseded, failed or, after too many attempts, dead,
-- or out_of_scope (about an entity outside the company's department scope:
-- recorded, not applied, the reason in last_error). $EVENT_STATUSES is the list
-- of wecom.runs.EventStatus (schema_changes/event_statuses.sql widens the check of
-- a table created before a status was added).
-- payload is the event as a JSON object with the XML's field names.
CREATE TABLE IF NOT EXISTS wecom_callback_events (
    event_id $AUTOID,
    conn_id TEXT,
    corp_id TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    received_at $TIMESTAMP NOT NULL,
    last_received_at $TIMESTAMP NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 1,
    create_time $TIMESTAMP NOT NULL,
    change_type TEXT NOT NULL,
    entity_type TEXT,
    entity_id TEXT,
    new_entity_id TEXT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    applied_at $TIMESTAMP,
    run_id TEXT,
    CONSTRAINT wecom_callback_events_dedup UNIQUE (corp_id, dedup_key),
    CONSTRAINT wecom_callback_events_status_valid
        CHECK (status IN ($EVENT_STATUSES)),
    CONSTRAINT wecom_callback_events_entity_type_valid
        CHECK (entity_type IN ('user', 'department', 'tag'))
);

-- The apply DAG and the sensor read "pending events of a corp in CreateTime order".
CREATE INDEX IF NOT EXISTS wecom_callback_events_queue
    ON wecom_callback_events (corp_id, status, create_time, event_id);

-- Superseding looks up the other events of the same entity.
CREATE INDEX IF NOT EXISTS wecom_callback_events_by_entity
    ON wecom_callback_events (corp_id, entity_type, entity_id, create_time);
