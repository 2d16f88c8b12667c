-- SCD type 2 history. A version is valid from valid_from (snapshot observation
-- time, or the callback's CreateTime) until valid_to (NULL while current).
-- A deletion closes the current version; a revival opens a new one.
-- change_source: snapshot or callback; run_id: the Airflow run that wrote it.
-- ended_by: why the entity stopped being current at valid_to: 'deleted' (WeCom
-- deleted it; for a membership, the membership ended) or 'out_of_scope' (it, or
-- for a membership its member or department, left the company's department
-- scope); NULL while current and when a newer version follows.
CREATE TABLE IF NOT EXISTS wecom_departments_history (
    corp_id TEXT NOT NULL,
    department_id BIGINT NOT NULL,
    name TEXT,
    name_en TEXT,
    parent_id BIGINT,
    sort_order BIGINT,
    path TEXT,
    depth INTEGER,
    row_hash TEXT NOT NULL,
    valid_from $TIMESTAMP NOT NULL,
    valid_to $TIMESTAMP,
    ended_by TEXT,
    change_source TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (corp_id, department_id, valid_from)
);

CREATE TABLE IF NOT EXISTS wecom_users_history (
    corp_id TEXT NOT NULL,
    userid TEXT NOT NULL,
    name TEXT,
    alias TEXT,
    position TEXT,
    gender SMALLINT,
    mobile TEXT,
    email TEXT,
    biz_mail TEXT,
    telephone TEXT,
    address TEXT,
    status SMALLINT,
    main_department_id BIGINT,
    avatar_url TEXT,
    open_userid TEXT,
    external_position TEXT,
    extattr TEXT,
    row_hash TEXT NOT NULL,
    valid_from $TIMESTAMP NOT NULL,
    valid_to $TIMESTAMP,
    ended_by TEXT,
    change_source TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (corp_id, userid, valid_from)
);

CREATE TABLE IF NOT EXISTS wecom_user_departments_history (
    corp_id TEXT NOT NULL,
    userid TEXT NOT NULL,
    department_id BIGINT NOT NULL,
    sort_order BIGINT,
    is_leader BOOLEAN,
    is_main BOOLEAN NOT NULL,
    row_hash TEXT NOT NULL,
    valid_from $TIMESTAMP NOT NULL,
    valid_to $TIMESTAMP,
    ended_by TEXT,
    change_source TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (corp_id, userid, department_id, valid_from)
);

CREATE INDEX IF NOT EXISTS wecom_departments_history_open
    ON wecom_departments_history (corp_id, department_id, valid_to);
CREATE INDEX IF NOT EXISTS wecom_users_history_open
    ON wecom_users_history (corp_id, userid, valid_to);
CREATE INDEX IF NOT EXISTS wecom_user_departments_history_open
    ON wecom_user_departments_history (corp_id, userid, valid_to);
CREATE INDEX IF NOT EXISTS wecom_user_departments_history_as_of
    ON wecom_user_departments_history (corp_id, valid_from, valid_to);
