-- A callback events table created before a status was added to wecom.runs.EventStatus
-- refuses it through its CHECK constraint. ensure_schema reads the constraint and,
-- when a status is missing, widens it: PostgreSQL replaces the constraint in place;
-- SQLite cannot alter a constraint, so the table is rebuilt under the current DDL in
-- the same transaction (rename, create, copy, drop; the indexes are then created
-- again by the schema files).

-- name: postgresql_definition
SELECT pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = 'wecom_callback_events'::regclass AND conname = 'wecom_callback_events_status_valid';

-- name: postgresql_widen
ALTER TABLE wecom_callback_events
    DROP CONSTRAINT wecom_callback_events_status_valid,
    ADD CONSTRAINT wecom_callback_events_status_valid CHECK (status IN ($EVENT_STATUSES));

-- name: sqlite_definition
SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'wecom_callback_events';

-- name: sqlite_set_aside
ALTER TABLE wecom_callback_events RENAME TO wecom_callback_events_before_upgrade;

-- name: sqlite_drop_old
DROP TABLE wecom_callback_events_before_upgrade;
