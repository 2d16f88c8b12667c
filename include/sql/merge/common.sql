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
-- A few ids of one kind of change: ORDER BY ... LIMIT keeps a small heap instead of
-- sorting every row of a large diff (a first load diffs every row).
SELECT entity FROM diff_$TABLE WHERE change = :change ORDER BY entity LIMIT :sample_size;
