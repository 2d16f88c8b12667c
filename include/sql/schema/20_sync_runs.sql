-- One row per sync run (kind full or delta), rewritten when a run is retried.
-- status: success, partial (incomplete snapshot: nothing deleted), failed,
-- stale (an older snapshot that finished after a newer one: nothing changed),
-- skipped (a fresh snapshot already covered the interval), dry_run (plan only),
-- guard_tripped (the mass-deletion guard stopped the load), unchanged (WeCom
-- answered exactly what the previous snapshot held and nothing else wrote the
-- tables since: recorded as a snapshot, nothing transformed or loaded).
-- snapshot_digest: sha256 of the extracted records (in any order), the transform
-- version and the PII policy; equal digests normalize to the same rows.
-- plan: per-table change counts with sample ids (JSON); drift: what a snapshot
-- found that callbacks had not applied (JSON), drift_total its size.
-- withheld_fields: the field groups WeCom did not send this run, with how many
-- records lacked each (JSON; NULL when it sent everything); degraded: those of
-- them an earlier snapshot could read (comma-separated; NULL when not degraded).
-- scope: the department scope the run synced, as JSON {"include": [...], "exclude":
-- [...]} (NULL: the whole company); *_left_scope: rows that left that scope (still in
-- WeCom, outside it), counted apart from *_deleted (gone from WeCom).
-- tags_*: tags changed; tag_members_*: tag memberships (members and departments)
-- added and removed; tags_seen: tags WeCom listed (NULL when tag/list was refused).
CREATE TABLE IF NOT EXISTS wecom_sync_runs (
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    corp_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    logical_date $TIMESTAMP,
    observed_at $TIMESTAMP,
    started_at $TIMESTAMP,
    finished_at $TIMESTAMP,
    status TEXT NOT NULL,
    strategy TEXT,
    strategy_reason TEXT,
    api_calls INTEGER,
    api_calls_by_endpoint TEXT,
    throttled INTEGER,
    departments_inserted INTEGER NOT NULL DEFAULT 0,
    departments_updated INTEGER NOT NULL DEFAULT 0,
    departments_deleted INTEGER NOT NULL DEFAULT 0,
    departments_revived INTEGER NOT NULL DEFAULT 0,
    users_inserted INTEGER NOT NULL DEFAULT 0,
    users_updated INTEGER NOT NULL DEFAULT 0,
    users_deleted INTEGER NOT NULL DEFAULT 0,
    users_revived INTEGER NOT NULL DEFAULT 0,
    departments_left_scope INTEGER NOT NULL DEFAULT 0,
    users_left_scope INTEGER NOT NULL DEFAULT 0,
    memberships_inserted INTEGER NOT NULL DEFAULT 0,
    memberships_updated INTEGER NOT NULL DEFAULT 0,
    memberships_deleted INTEGER NOT NULL DEFAULT 0,
    tags_inserted INTEGER NOT NULL DEFAULT 0,
    tags_updated INTEGER NOT NULL DEFAULT 0,
    tags_deleted INTEGER NOT NULL DEFAULT 0,
    tags_revived INTEGER NOT NULL DEFAULT 0,
    tag_members_inserted INTEGER NOT NULL DEFAULT 0,
    tag_members_deleted INTEGER NOT NULL DEFAULT 0,
    departments_seen INTEGER,
    users_seen INTEGER,
    tags_seen INTEGER,
    drift_total INTEGER,
    drift TEXT,
    plan TEXT,
    message TEXT,
    snapshot_digest TEXT,
    withheld_fields TEXT,
    degraded TEXT,
    scope TEXT,
    PRIMARY KEY (dag_id, run_id)
);

CREATE INDEX IF NOT EXISTS wecom_sync_runs_by_corp
    ON wecom_sync_runs (corp_id, kind, observed_at);
