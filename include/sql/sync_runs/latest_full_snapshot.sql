-- The newest snapshot already loaded for a corp, other than this run's own.
SELECT MAX(observed_at) FROM wecom_sync_runs
WHERE corp_id = :corp_id AND kind = 'full' AND status IN ('success', 'partial', 'unchanged')
  AND NOT (dag_id = :dag_id AND run_id = :run_id);
