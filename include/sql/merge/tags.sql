-- Merge one snapshot's tags (stage_wecom_tags) into wecom_tags and its history. A tag tag/list
-- no longer names is soft-deleted, only when the snapshot is complete and tag/list answered.
-- Shared steps are in common.sql. Binds: :corp_id, :observed_at, :now, :tags_complete, :run_id.

-- name: create_stage
$TEMP_TABLE stage_wecom_tags AS
SELECT corp_id, tag_id, $TAGS_VALUES, row_hash
FROM wecom_tags WHERE 1 = 0;


-- name: index_stage
CREATE UNIQUE INDEX stage_wecom_tags_key ON stage_wecom_tags (corp_id, tag_id);


-- name: drop_newer
DELETE FROM stage_wecom_tags
WHERE tag_id IN (
    SELECT t.tag_id FROM wecom_tags t
    WHERE t.corp_id = :corp_id AND t.observed_at > :observed_at
);


-- name: create_diff
$TEMP_TABLE diff_wecom_tags AS
SELECT 'inserted' AS change, s.tag_id AS tag_id, CAST(s.tag_id AS TEXT) AS entity
FROM stage_wecom_tags s
WHERE NOT EXISTS (SELECT 1 FROM wecom_tags t WHERE t.corp_id = s.corp_id AND t.tag_id = s.tag_id)
UNION ALL
SELECT CASE WHEN t.is_deleted THEN 'revived' ELSE 'updated' END, s.tag_id, CAST(s.tag_id AS TEXT)
FROM stage_wecom_tags s
JOIN wecom_tags t ON t.corp_id = s.corp_id AND t.tag_id = s.tag_id
WHERE t.is_deleted OR t.row_hash <> s.row_hash
UNION ALL
SELECT 'deleted', t.tag_id, CAST(t.tag_id AS TEXT)
FROM wecom_tags t
WHERE :tags_complete AND t.corp_id = :corp_id AND NOT t.is_deleted AND t.observed_at <= :observed_at
  AND NOT EXISTS (SELECT 1 FROM stage_wecom_tags s WHERE s.corp_id = t.corp_id AND s.tag_id = t.tag_id);


-- name: current
SELECT COUNT(*) FROM wecom_tags WHERE corp_id = :corp_id AND NOT is_deleted;


-- name: history_close
UPDATE wecom_tags_history SET valid_to = :observed_at,
    ended_by = CASE WHEN tag_id IN (SELECT tag_id FROM diff_wecom_tags WHERE change = 'deleted') THEN 'deleted' END
WHERE corp_id = :corp_id AND valid_to IS NULL
  AND tag_id IN (SELECT tag_id FROM diff_wecom_tags WHERE change IN ('updated', 'deleted'));


-- name: history_open
INSERT INTO wecom_tags_history (
    corp_id, tag_id, $TAGS_VALUES, row_hash,
    valid_from, valid_to, change_source, run_id
)
SELECT corp_id, tag_id, $TAGS_VALUES, row_hash,
       :observed_at, NULL, 'snapshot', :run_id
FROM stage_wecom_tags
WHERE tag_id IN (SELECT tag_id FROM diff_wecom_tags WHERE change IN ('inserted', 'updated', 'revived'))
ON CONFLICT (corp_id, tag_id, valid_from) DO UPDATE SET
    $TAGS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    valid_to = NULL,
    ended_by = NULL,
    change_source = excluded.change_source,
    run_id = excluded.run_id;


-- name: upsert
INSERT INTO wecom_tags (
    corp_id, tag_id, $TAGS_VALUES, row_hash,
    is_deleted, first_seen_at, last_seen_at, deleted_at, updated_at, observed_at
)
SELECT corp_id, tag_id, $TAGS_VALUES, row_hash,
       FALSE, :observed_at, :observed_at, NULL, :now, :observed_at
FROM stage_wecom_tags WHERE TRUE
ON CONFLICT (corp_id, tag_id) DO UPDATE SET
    $TAGS_FROM_EXCLUDED,
    row_hash = excluded.row_hash,
    is_deleted = FALSE,
    deleted_at = NULL,
    last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at,
    observed_at = excluded.observed_at
WHERE wecom_tags.row_hash <> excluded.row_hash OR wecom_tags.is_deleted;


-- name: delete
UPDATE wecom_tags
SET is_deleted = TRUE, deleted_at = :observed_at, updated_at = :now, observed_at = :observed_at
WHERE corp_id = :corp_id AND tag_id IN (SELECT tag_id FROM diff_wecom_tags WHERE change = 'deleted');
