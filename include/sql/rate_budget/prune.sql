-- Forget buckets that count in no window any more.
DELETE FROM wecom_rate_budget WHERE expires_at < :now;
