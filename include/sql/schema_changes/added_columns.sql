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

-- name: wecom_sync_runs__scope
ALTER TABLE wecom_sync_runs ADD COLUMN scope TEXT;

-- name: wecom_sync_runs__departments_left_scope
ALTER TABLE wecom_sync_runs ADD COLUMN departments_left_scope INTEGER NOT NULL DEFAULT 0;

-- name: wecom_sync_runs__users_left_scope
ALTER TABLE wecom_sync_runs ADD COLUMN users_left_scope INTEGER NOT NULL DEFAULT 0;

-- name: wecom_departments__out_of_scope
ALTER TABLE wecom_departments ADD COLUMN out_of_scope BOOLEAN NOT NULL DEFAULT FALSE;

-- name: wecom_users__out_of_scope
ALTER TABLE wecom_users ADD COLUMN out_of_scope BOOLEAN NOT NULL DEFAULT FALSE;

-- name: wecom_departments_history__ended_by
ALTER TABLE wecom_departments_history ADD COLUMN ended_by TEXT;

-- name: wecom_users_history__ended_by
ALTER TABLE wecom_users_history ADD COLUMN ended_by TEXT;

-- name: wecom_user_departments_history__ended_by
ALTER TABLE wecom_user_departments_history ADD COLUMN ended_by TEXT;
-- name: wecom_sync_runs__tags_inserted
ALTER TABLE wecom_sync_runs ADD COLUMN tags_inserted INTEGER NOT NULL DEFAULT 0;

-- name: wecom_sync_runs__tags_updated
ALTER TABLE wecom_sync_runs ADD COLUMN tags_updated INTEGER NOT NULL DEFAULT 0;

-- name: wecom_sync_runs__tags_deleted
ALTER TABLE wecom_sync_runs ADD COLUMN tags_deleted INTEGER NOT NULL DEFAULT 0;

-- name: wecom_sync_runs__tags_revived
ALTER TABLE wecom_sync_runs ADD COLUMN tags_revived INTEGER NOT NULL DEFAULT 0;

-- name: wecom_sync_runs__tag_members_inserted
ALTER TABLE wecom_sync_runs ADD COLUMN tag_members_inserted INTEGER NOT NULL DEFAULT 0;

-- name: wecom_sync_runs__tag_members_deleted
ALTER TABLE wecom_sync_runs ADD COLUMN tag_members_deleted INTEGER NOT NULL DEFAULT 0;

-- name: wecom_sync_runs__tags_seen
ALTER TABLE wecom_sync_runs ADD COLUMN tags_seen INTEGER;

-- name: wecom_tags_history__ended_by
ALTER TABLE wecom_tags_history ADD COLUMN ended_by TEXT;

-- name: wecom_tag_users_history__ended_by
ALTER TABLE wecom_tag_users_history ADD COLUMN ended_by TEXT;

-- name: wecom_tag_departments_history__ended_by
ALTER TABLE wecom_tag_departments_history ADD COLUMN ended_by TEXT;

-- name: wecom_user_attributes_history__ended_by
ALTER TABLE wecom_user_attributes_history ADD COLUMN ended_by TEXT;
