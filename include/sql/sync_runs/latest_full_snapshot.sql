-- The newest snapshot recorded for a corp (loaded, partial or unchanged), other than this run's own.
SELECT dag_id, run_id, status, observed_at, snapshot_digest, withheld_fields, degraded, departments_seen, users_seen, tags_seen,
       scope
FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full' AND status IN ('success', 'partial', 'unchanged')
  AND NOT (dag_id = :dag_id AND run_id = :run_id)
ORDER BY observed_at DESC
LIMIT 1;
