-- Tags (WeCom's groups) and members' custom fields (extattr), with the
-- conventions of 10_directory.sql: observed_at orders writes, unchanged rows
-- are not rewritten, a tag WeCom no longer lists is soft-deleted with its
-- memberships and revived when it comes back.
CREATE TABLE IF NOT EXISTS wecom_tags (
    corp_id TEXT NOT NULL,
    tag_id BIGINT NOT NULL,
    tag_name TEXT,
    is_deleted BOOLEAN NOT NULL DEFAULT FALSE,
    first_seen_at $TIMESTAMP NOT NULL,
    last_seen_at $TIMESTAMP NOT NULL,
    deleted_at $TIMESTAMP,
    updated_at $TIMESTAMP NOT NULL,
    observed_at $TIMESTAMP NOT NULL,
    row_hash TEXT NOT NULL,
    PRIMARY KEY (corp_id, tag_id)
);

-- A member who holds the tag itself (tag/get's userlist). The member may be one
-- the member list did not contain (created during the walk): the row is kept.
CREATE TABLE IF NOT EXISTS wecom_tag_users (
    corp_id TEXT NOT NULL,
    tag_id BIGINT NOT NULL,
    userid TEXT NOT NULL,
    row_hash TEXT NOT NULL,
    updated_at $TIMESTAMP NOT NULL,
    PRIMARY KEY (corp_id, tag_id, userid)
);

CREATE INDEX IF NOT EXISTS wecom_tag_users_by_user ON wecom_tag_users (corp_id, userid);

-- A department that holds the tag (tag/get's partylist): everyone in its subtree holds it.
CREATE TABLE IF NOT EXISTS wecom_tag_departments (
    corp_id TEXT NOT NULL,
    tag_id BIGINT NOT NULL,
    department_id BIGINT NOT NULL,
    row_hash TEXT NOT NULL,
    updated_at $TIMESTAMP NOT NULL,
    PRIMARY KEY (corp_id, tag_id, department_id)
);

CREATE INDEX IF NOT EXISTS wecom_tag_departments_by_department
    ON wecom_tag_departments (corp_id, department_id);

-- One row per custom field (extattr attribute) of a member. attr_type: text,
-- web or miniprogram; the columns of the other types are NULL. An attribute WeCom
-- sent with an empty value keeps its row with NULL values (cleared); one the
-- answer left out keeps its stored row (withheld).
CREATE TABLE IF NOT EXISTS wecom_user_attributes (
    corp_id TEXT NOT NULL,
    userid TEXT NOT NULL,
    attr_name TEXT NOT NULL,
    attr_type TEXT,
    text_value TEXT,
    web_url TEXT,
    web_title TEXT,
    miniprogram_appid TEXT,
    miniprogram_pagepath TEXT,
    miniprogram_title TEXT,
    row_hash TEXT NOT NULL,
    updated_at $TIMESTAMP NOT NULL,
    PRIMARY KEY (corp_id, userid, attr_name)
);

CREATE INDEX IF NOT EXISTS wecom_user_attributes_by_value
    ON wecom_user_attributes (corp_id, attr_name, text_value);
