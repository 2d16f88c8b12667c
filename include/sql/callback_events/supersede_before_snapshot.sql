-- After a snapshot loads, pending (or failed) callback events it already reflects
-- are superseded: those created no later than the snapshot's observation time,
-- for any member or department when the snapshot was complete, else only for
-- those it saw; tag events only when it read every tag's members (:tags_read).
-- Binds: :corp_id, :observed_at, :complete, :tags_read, :now, :run_id.
UPDATE wecom_callback_events
SET status = 'superseded', applied_at = :now, run_id = :run_id
WHERE corp_id = :corp_id AND status IN ('pending', 'failed') AND create_time <= :observed_at
  AND ((entity_type IN ('user', 'department')
        AND (:complete
             OR (entity_type = 'user' AND entity_id IN (SELECT userid FROM stage_wecom_users))
             OR (entity_type = 'department'
                 AND entity_id IN (SELECT CAST(department_id AS TEXT) FROM stage_wecom_departments))))
       OR (entity_type = 'tag' AND :tags_read));
