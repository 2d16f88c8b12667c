-- Every member with their departments as of the var wecom_as_of (ISO 8601; UTC without an
-- offset; default: the time of the run), from the history tables:
--     dbt build --select wecom_members_as_of --vars '{wecom_as_of: "2026-03-01T09:00:00+08:00"}'
-- For several instants in one model, call the macro wecom_members_as_of(<SQL timestamp>).
{{ wecom_members_as_of(wecom_as_of()) }}
