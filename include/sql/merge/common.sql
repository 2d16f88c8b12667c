-- Statements every table family shares; $TABLE is the directory table's name.
-- Each family file (users.sql, departments.sql, ...) builds stage_$TABLE, the
-- snapshot's rows, and diff_$TABLE: one row per key that changes, with
-- change in (inserted, updated, revived, deleted) and a readable entity id.

-- name: drop_stage
DROP TABLE IF EXISTS stage_$TABLE;

-- name: drop_diff
DROP TABLE IF EXISTS diff_$TABLE;

-- name: analyze_stage
ANALYZE stage_$TABLE;

-- name: plan
SELECT change, COUNT(*) AS n FROM diff_$TABLE GROUP BY change;

-- name: sample
SELECT change, entity FROM (
    SELECT change, entity, ROW_NUMBER() OVER (PARTITION BY change ORDER BY entity) AS rn
    FROM diff_$TABLE
) ranked
WHERE rn <= :sample_size
ORDER BY change, entity;
