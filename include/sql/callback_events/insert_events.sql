-- Store a batch of received events, each once, in one statement: :events is a JSON
-- array of objects with the inserted columns (timestamps as the dialect stores
-- them). The key (corp_id, dedup_key) of each row inserted comes back; an event whose key does
-- not is a redelivery (same corp and dedup_key), counted by count_redelivery.sql.
-- The NOT EXISTS reads the committed row without a lock, so a redelivery of a row
-- the apply DAG or a load is updating does not wait for them (ON CONFLICT alone
-- would: it must know which version of the row wins); ON CONFLICT DO NOTHING
-- covers another receiver inserting the same event now. One statement per batch,
-- whatever its size: one round trip and one plan instead of one per event.

-- name: postgresql
INSERT INTO wecom_callback_events (
    conn_id, corp_id, dedup_key, received_at, last_received_at, create_time,
    change_type, entity_type, entity_id, new_entity_id, payload, status
)
SELECT
    e.conn_id, e.corp_id, e.dedup_key, e.received_at, e.received_at, e.create_time,
    e.change_type, e.entity_type, e.entity_id, e.new_entity_id, e.payload, e.status
FROM json_to_recordset(CAST(:events AS json)) AS e(
    conn_id TEXT, corp_id TEXT, dedup_key TEXT, received_at TIMESTAMPTZ, create_time TIMESTAMPTZ,
    change_type TEXT, entity_type TEXT, entity_id TEXT, new_entity_id TEXT, payload TEXT, status TEXT
)
WHERE NOT EXISTS (
    SELECT 1 FROM wecom_callback_events s WHERE s.corp_id = e.corp_id AND s.dedup_key = e.dedup_key
)
ON CONFLICT (corp_id, dedup_key) DO NOTHING
RETURNING corp_id, dedup_key;

-- name: sqlite
INSERT INTO wecom_callback_events (
    conn_id, corp_id, dedup_key, received_at, last_received_at, create_time,
    change_type, entity_type, entity_id, new_entity_id, payload, status
)
SELECT
    e.value ->> 'conn_id', e.value ->> 'corp_id', e.value ->> 'dedup_key',
    e.value ->> 'received_at', e.value ->> 'received_at', e.value ->> 'create_time',
    e.value ->> 'change_type', e.value ->> 'entity_type', e.value ->> 'entity_id',
    e.value ->> 'new_entity_id', e.value ->> 'payload', e.value ->> 'status'
FROM json_each(:events) AS e
WHERE NOT EXISTS (
    SELECT 1 FROM wecom_callback_events s
    WHERE s.corp_id = e.value ->> 'corp_id' AND s.dedup_key = e.value ->> 'dedup_key'
)
ON CONFLICT (corp_id, dedup_key) DO NOTHING
RETURNING corp_id, dedup_key;
