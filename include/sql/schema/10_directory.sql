-- Current state of the directory: one row per department / member / link.
-- observed_at is when WeCom was seen in the state a row holds (snapshot start
-- or callback CreateTime); writes never move it backwards. Unchanged rows are
-- never rewritten, so last_seen_at is the time the row last changed or was
-- confirmed by a write; the corp's latest complete snapshot is in wecom_sync_runs.
-- is_deleted: no longer current; out_of_scope says why when it is: TRUE when the
-- department or member left the company's department scope (it may well still
-- exist in WeCom), FALSE when WeCom deleted it. Coming back revives the row.
CREATE TABLE IF NOT EXISTS wecom_departments (
    corp_id TEXT NOT NULL,
    department_id BIGINT NOT NULL,
    name TEXT,
    name_en TEXT,
    parent_id BIGINT,
    sort_order BIGINT,
    path TEXT,
    depth INTEGER,
    is_deleted BOOLEAN NOT NULL DEFAULT FALSE,
    out_of_scope BOOLEAN NOT NULL DEFAULT FALSE,
    first_seen_at $TIMESTAMP NOT NULL,
    last_seen_at $TIMESTAMP NOT NULL,
    deleted_at $TIMESTAMP,
    updated_at $TIMESTAMP NOT NULL,
    observed_at $TIMESTAMP NOT NULL,
    row_hash TEXT NOT NULL,
    PRIMARY KEY (corp_id, department_id)
);

CREATE TABLE IF NOT EXISTS wecom_users (
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
    is_deleted BOOLEAN NOT NULL DEFAULT FALSE,
    out_of_scope BOOLEAN NOT NULL DEFAULT FALSE,
    first_seen_at $TIMESTAMP NOT NULL,
    last_seen_at $TIMESTAMP NOT NULL,
    deleted_at $TIMESTAMP,
    updated_at $TIMESTAMP NOT NULL,
    observed_at $TIMESTAMP NOT NULL,
    row_hash TEXT NOT NULL,
    PRIMARY KEY (corp_id, userid)
);

CREATE TABLE IF NOT EXISTS wecom_user_departments (
    corp_id TEXT NOT NULL,
    userid TEXT NOT NULL,
    department_id BIGINT NOT NULL,
    sort_order BIGINT,
    is_leader BOOLEAN,
    is_main BOOLEAN NOT NULL,
    row_hash TEXT NOT NULL,
    updated_at $TIMESTAMP NOT NULL,
    PRIMARY KEY (corp_id, userid, department_id)
);

CREATE INDEX IF NOT EXISTS wecom_user_departments_by_department
    ON wecom_user_departments (corp_id, department_id);

CREATE TABLE IF NOT EXISTS wecom_department_leaders (
    corp_id TEXT NOT NULL,
    department_id BIGINT NOT NULL,
    userid TEXT NOT NULL,
    PRIMARY KEY (corp_id, department_id, userid)
);

CREATE TABLE IF NOT EXISTS wecom_user_direct_leaders (
    corp_id TEXT NOT NULL,
    userid TEXT NOT NULL,
    leader_userid TEXT NOT NULL,
    PRIMARY KEY (corp_id, userid, leader_userid)
);

CREATE TABLE IF NOT EXISTS wecom_department_closure (
    corp_id TEXT NOT NULL,
    ancestor_id BIGINT NOT NULL,
    descendant_id BIGINT NOT NULL,
    distance INTEGER NOT NULL,
    PRIMARY KEY (corp_id, ancestor_id, descendant_id)
);

CREATE INDEX IF NOT EXISTS wecom_department_closure_by_descendant
    ON wecom_department_closure (corp_id, descendant_id);
