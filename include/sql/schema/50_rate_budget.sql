-- WeCom's frequency budget, shared by every process and machine that calls WeCom for
-- the companies whose target database this is (see wecom/api/budget.py).
-- scope: 'corp:<corp id>' or 'ip:<egress name>'; endpoint: the API, e.g. 'user/get';
-- window_ms: the window the row counts for (60000 a minute, 3600000 an hour);
-- bucket: the window's 1/60 slice, as unix time divided by the slice length;
-- used: calls reserved in the bucket (blocks given back are subtracted);
-- granted: what the last reservation got, read back in the same transaction;
-- expires_at: unix seconds after which the bucket counts in no window (pruned).
CREATE TABLE IF NOT EXISTS wecom_rate_budget (
    scope TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    window_ms BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    granted INTEGER NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, endpoint, window_ms, bucket)
);

CREATE INDEX IF NOT EXISTS wecom_rate_budget_by_expiry ON wecom_rate_budget (expires_at);
