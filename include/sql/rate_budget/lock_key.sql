-- Serialize the reservations of one counter (scope, API, window) across processes: each one
-- first updates the counter's head row (bucket -1, never pruned) and holds its lock until it
-- commits, so the sums read after it include every grant committed before (PostgreSQL takes
-- a new snapshot per statement; SQLite has one writer at a time anyway).
INSERT INTO wecom_rate_budget (scope, endpoint, window_ms, bucket, used, granted, expires_at)
VALUES (:scope, :endpoint, :window_ms, -1, 0, 0, 9223372036854775807)
ON CONFLICT (scope, endpoint, window_ms, bucket) DO UPDATE SET granted = 0;
