-- Decide how many of :want calls the current bucket may get: what the limit leaves after
-- the earlier buckets of the window and this bucket's own count. Updating the row locks it,
-- so concurrent reservers queue here and each one sees the grants committed before it
-- (PostgreSQL re-reads the row after the wait; SQLite has one writer at a time). Earlier
-- buckets no longer grow, so reading them without a lock is safe.
WITH earlier AS (
    SELECT :limit - COALESCE(SUM(used), 0) AS room
    FROM wecom_rate_budget
    WHERE scope = :scope AND endpoint = :endpoint AND window_ms = :window_ms
      AND bucket > :bucket - :span AND bucket < :bucket
)
UPDATE wecom_rate_budget
SET granted = CASE
        WHEN earlier.room - wecom_rate_budget.used >= :want THEN :want
        WHEN earlier.room > wecom_rate_budget.used THEN earlier.room - wecom_rate_budget.used
        ELSE 0
    END
FROM earlier
WHERE scope = :scope AND endpoint = :endpoint AND window_ms = :window_ms AND bucket = :bucket;
