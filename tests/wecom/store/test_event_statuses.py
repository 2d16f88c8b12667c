"""An events table created before a status existed is widened in place by ensure_schema, rows kept."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from wecom.runs import EventStatus
from wecom.store.event_statuses import EVENTS_DDL, missing_statuses
from wecom.store.loader import DirectoryLoader
from wecom.store.sql import read_statements

OLD_STATUSES = "'pending', 'applied', 'superseded', 'ignored', 'failed', 'dead'"
ROW = (
    "INSERT INTO wecom_callback_events (corp_id, dedup_key, received_at, last_received_at, create_time, "
    "change_type, entity_type, entity_id, payload, status) VALUES ('ww', :key, :t, :t, :t, 'update_user', "
    "'user', 'u', '{}', :status)"
)
T = "2026-01-01 00:00:00.000000"


def insert(engine: Engine, key: str, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(ROW), {"key": key, "t": T, "status": status})


def test_missing_statuses_are_read_from_the_constraint_text() -> None:
    assert missing_statuses(None) == []
    assert missing_statuses(f"CHECK (status IN ({OLD_STATUSES}))") == ["out_of_scope"]
    assert missing_statuses("CHECK ((status = ANY (ARRAY['out_of_scope'::text, " + OLD_STATUSES + "])))") == []


def test_an_old_events_table_accepts_out_of_scope_after_ensure_schema(target_engine: Engine) -> None:
    dialect = target_engine.dialect.name
    with target_engine.begin() as conn:
        for statement in read_statements(EVENTS_DDL, dialect):
            statuses = ", ".join(f"'{status}'" for status in EventStatus)
            conn.execute(text(statement.replace(statuses, OLD_STATUSES)))
    insert(target_engine, "a", "dead")
    insert(target_engine, "b", "pending")
    with pytest.raises(IntegrityError):
        insert(target_engine, "c", "out_of_scope")

    DirectoryLoader(target_engine).ensure_schema()
    DirectoryLoader(target_engine).ensure_schema()  # a second time finds nothing to widen

    insert(target_engine, "c", "out_of_scope")
    with target_engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, dedup_key, status FROM wecom_callback_events ORDER BY event_id"))
        assert [tuple(r)[1:] for r in rows] == [("a", "dead"), ("b", "pending"), ("c", "out_of_scope")]
        kept = conn.execute(text("SELECT event_id FROM wecom_callback_events WHERE dedup_key IN ('a', 'b')"))
        assert sorted(i for (i,) in kept) == [1, 2], "event ids survive the rebuild"
    indexes = {i["name"] for i in inspect(target_engine).get_indexes("wecom_callback_events")}
    assert {"wecom_callback_events_queue", "wecom_callback_events_by_entity"} <= indexes
    with pytest.raises(IntegrityError):
        insert(target_engine, "d", "lost")
