-- Which version of the DDL this database was last brought up to: ddl_hash is the
-- sha256 of every statement in schema/ and schema_changes/ as rendered for this
-- dialect, so any table, column or index added to those files changes it. While
-- it matches (and every table is there), ensure_schema is this one row's read.
CREATE TABLE IF NOT EXISTS wecom_schema_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    ddl_hash TEXT NOT NULL,
    applied_at $TIMESTAMP NOT NULL
);
