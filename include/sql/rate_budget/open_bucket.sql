-- Make sure the current bucket's row exists, so the grant below has a row to update.
INSERT INTO wecom_rate_budget (scope, endpoint, window_ms, bucket, used, granted, expires_at)
VALUES (:scope, :endpoint, :window_ms, :bucket, 0, 0, :expires_at)
ON CONFLICT (scope, endpoint, window_ms, bucket) DO NOTHING;
