-- Decide how many of :want calls the current bucket may get: what the limit leaves after
-- every other bucket that shares a window with it (:span buckets either side; later ones
-- hold calls when a slow process reserves behind a faster one) and this bucket's own count.
-- Runs under the counter's lock (lock_key.sql).
WITH others AS (
    SELECT :limit - COALESCE(SUM(used), 0) AS room
    FROM wecom_rate_budget
    WHERE scope = :scope AND endpoint = :endpoint AND window_ms = :window_ms
      AND bucket > :bucket - :span AND bucket < :bucket + :span AND bucket <> :bucket
)
UPDATE wecom_rate_budget
SET granted = CASE
        WHEN others.room - wecom_rate_budget.used >= :want THEN :want
        WHEN others.room > wecom_rate_budget.used THEN others.room - wecom_rate_budget.used
        ELSE 0
    END
FROM others
WHERE scope = :scope AND endpoint = :endpoint AND window_ms = :window_ms AND bucket = :bucket;
