-- Return calls a process reserved but never made; the bucket still counts in its window,
-- so others may use them until it slides out.
UPDATE wecom_rate_budget
SET used = used - :calls
WHERE scope = :scope AND endpoint = :endpoint AND window_ms = :window_ms AND bucket = :bucket
  AND used >= :calls;
