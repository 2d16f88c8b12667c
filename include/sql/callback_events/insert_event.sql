-- Store one received event once; a redelivery of the same message only counts
-- the delivery. delivery_count comes back as 1 exactly when the row is new.
INSERT INTO wecom_callback_events (
    conn_id, corp_id, dedup_key, received_at, last_received_at, create_time,
    change_type, entity_type, entity_id, new_entity_id, payload, status
) VALUES (
    :conn_id, :corp_id, :dedup_key, :received_at, :received_at, :create_time,
    :change_type, :entity_type, :entity_id, :new_entity_id, :payload, :status
)
ON CONFLICT (corp_id, dedup_key) DO UPDATE SET
    delivery_count = wecom_callback_events.delivery_count + 1,
    last_received_at = excluded.last_received_at
RETURNING delivery_count;
