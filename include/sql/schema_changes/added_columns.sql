-- Columns added to a table after databases were created with it. ensure_schema
-- runs each statement whose column the table lacks, so a database made by an
-- earlier version catches up; the schema/ files declare every table whole.
-- Each statement is named <table>__<column>.

-- name: wecom_sync_runs__snapshot_digest
ALTER TABLE wecom_sync_runs ADD COLUMN snapshot_digest TEXT;

-- name: wecom_sync_runs__withheld_fields
ALTER TABLE wecom_sync_runs ADD COLUMN withheld_fields TEXT;

-- name: wecom_sync_runs__degraded
ALTER TABLE wecom_sync_runs ADD COLUMN degraded TEXT;
