-- SCD type 2 history of tags, tag memberships and custom fields, as in 40_history.sql
-- (ended_by: 'deleted', or 'out_of_scope' for a member or department that left the department scope).
CREATE TABLE IF NOT EXISTS wecom_tags_history (
    corp_id TEXT NOT NULL,
    tag_id BIGINT NOT NULL,
    tag_name TEXT,
    row_hash TEXT NOT NULL,
    valid_from $TIMESTAMP NOT NULL,
    valid_to $TIMESTAMP,
    ended_by TEXT,
    change_source TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (corp_id, tag_id, valid_from)
);

CREATE TABLE IF NOT EXISTS wecom_tag_users_history (
    corp_id TEXT NOT NULL,
    tag_id BIGINT NOT NULL,
    userid TEXT NOT NULL,
    row_hash TEXT NOT NULL,
    valid_from $TIMESTAMP NOT NULL,
    valid_to $TIMESTAMP,
    ended_by TEXT,
    change_source TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (corp_id, tag_id, userid, valid_from)
);

CREATE TABLE IF NOT EXISTS wecom_tag_departments_history (
    corp_id TEXT NOT NULL,
    tag_id BIGINT NOT NULL,
    department_id BIGINT NOT NULL,
    row_hash TEXT NOT NULL,
    valid_from $TIMESTAMP NOT NULL,
    valid_to $TIMESTAMP,
    ended_by TEXT,
    change_source TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (corp_id, tag_id, department_id, valid_from)
);

CREATE TABLE IF NOT EXISTS wecom_user_attributes_history (
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
    valid_from $TIMESTAMP NOT NULL,
    valid_to $TIMESTAMP,
    ended_by TEXT,
    change_source TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (corp_id, userid, attr_name, valid_from)
);

CREATE INDEX IF NOT EXISTS wecom_tags_history_open ON wecom_tags_history (corp_id, tag_id, valid_to);
CREATE INDEX IF NOT EXISTS wecom_tag_users_history_open ON wecom_tag_users_history (corp_id, tag_id, userid, valid_to);
CREATE INDEX IF NOT EXISTS wecom_tag_departments_history_open
    ON wecom_tag_departments_history (corp_id, tag_id, department_id, valid_to);
CREATE INDEX IF NOT EXISTS wecom_user_attributes_history_open
    ON wecom_user_attributes_history (corp_id, userid, valid_to);
