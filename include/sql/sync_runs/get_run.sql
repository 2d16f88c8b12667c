SELECT * FROM wecom_sync_runs WHERE dag_id = :dag_id AND run_id = :run_id;
