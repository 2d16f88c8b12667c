-- Store one received event once. A row comes back exactly when it is new; a
-- redelivery (same corp and dedup_key) inserts nothing and is then counted by
-- count_redelivery.sql. The NOT EXISTS reads the committed row without a lock, so
-- a redelivery of a row the apply DAG or a load is updating does not wait for
-- them (ON CONFLICT alone would: it must know which version of the row wins);
-- ON CONFLICT DO NOTHING covers another receiver inserting the same event now.
INSERT INTO wecom_callback_events (
    conn_id, corp_id, dedup_key, received_at, last_received_at, create_time,
    change_type, entity_type, entity_id, new_entity_id, payload, status
)
SELECT
    :conn_id, :corp_id, :dedup_key, :received_at, :received_at, :create_time,
    :change_type, :entity_type, :entity_id, :new_entity_id, :payload, :status
WHERE NOT EXISTS (
    SELECT 1 FROM wecom_callback_events WHERE corp_id = :corp_id AND dedup_key = :dedup_key
)
ON CONFLICT (corp_id, dedup_key) DO NOTHING
RETURNING event_id;
