-- Count the grant decided by grant.sql (same transaction, still under the lock) and read it back.
UPDATE wecom_rate_budget
SET used = used + granted
WHERE scope = :scope AND endpoint = :endpoint AND window_ms = :window_ms AND bucket = :bucket
RETURNING granted;
