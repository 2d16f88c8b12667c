-- The schema version row (schema/90_schema_version.sql): read before any DDL runs,
-- written once the DDL of this version has run. Binds: :tables, every table the
-- DDL creates, so a table dropped by hand is recreated even when the hash matches.

-- name: read_postgresql
SELECT ddl_hash,
       (SELECT COUNT(*) FROM information_schema.tables
        WHERE table_schema = current_schema() AND table_name IN :tables) AS tables_present
FROM wecom_schema_version WHERE id = 1;

-- name: read_sqlite
SELECT ddl_hash,
       (SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN :tables) AS tables_present
FROM wecom_schema_version WHERE id = 1;

-- name: record
INSERT INTO wecom_schema_version (id, ddl_hash, applied_at) VALUES (1, :ddl_hash, :applied_at)
ON CONFLICT (id) DO UPDATE SET ddl_hash = excluded.ddl_hash, applied_at = excluded.applied_at;
