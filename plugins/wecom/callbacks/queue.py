"""The callback event queue in ``wecom_callback_events``: what is ready, what is replayed with it, and how
each event ends (applied, superseded, failed with a reason, dead).

Light on purpose (SQLAlchemy only): the sensor and the trigger import it to count ready events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, bindparam, text

from wecom.callbacks.fold import Event
from wecom.constants import DEFAULT_MAX_ATTEMPTS
from wecom.store.sql import db_time, parse_db_time, read_named_statements

EVENTS_SQL = "deltas/events.sql"
# Bound parameters per IN list: far below SQLite's and PostgreSQL's limits.
CHUNK = 500


def in_chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    """``values`` (sorted) in lists of at most ``CHUNK``."""
    ordered: Sequence[Any] = sorted(values)
    for start in range(0, len(ordered), CHUNK):
        yield list(ordered[start : start + CHUNK])


def expanding(sql: str, *names: str) -> TextClause:
    """A statement whose ``:name`` binds take lists (``IN :keys``)."""
    return text(sql).bindparams(*(bindparam(name, expanding=True) for name in names))


def event_from_row(row: Mapping[str, Any]) -> Event:
    return Event(
        event_id=int(row["event_id"]),
        status=row["status"],
        attempts=int(row["attempts"]),
        create_time=parse_db_time(row["create_time"]),
        change_type=row["change_type"],
        entity_type=row["entity_type"],
        entity_id=row["entity_id"],
        new_entity_id=row["new_entity_id"],
        payload=json.loads(row["payload"]),
    )


def count_ready(engine: Engine, corp_id: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> int:
    """Events waiting to be applied (pending, or failed with attempts left)."""
    sql = read_named_statements(EVENTS_SQL, engine.dialect.name)["count_ready"]
    with engine.connect() as conn:
        return int(conn.execute(text(sql), {"corp_id": corp_id, "max_attempts": max_attempts}).scalar_one())


class EventQueue:
    """One corp's events on one connection."""

    def __init__(self, conn: Connection, corp_id: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        self.conn = conn
        self.corp_id = corp_id
        self.max_attempts = max_attempts
        self.dialect = conn.dialect.name
        self.sql = read_named_statements(EVENTS_SQL, self.dialect)

    def _events(self, statement: TextClause, **params: Any) -> list[Event]:
        rows = self.conn.execute(statement, {"corp_id": self.corp_id, **params}).mappings()
        return [event_from_row(row) for row in rows]

    def ready(self, limit: int) -> list[Event]:
        """Up to ``limit`` pending or retryable events, oldest first."""
        return self._events(text(self.sql["select_batch"]), max_attempts=self.max_attempts, limit=limit)

    def complete_snapshot_at(self, entity_type: str = "user") -> datetime | None:
        """When the latest complete snapshot observed WeCom: events before it are in it. For tag events,
        the latest one that also read every tag's members."""
        name = "latest_tag_snapshot" if entity_type == "tag" else "latest_complete_snapshot"
        value = self.conn.execute(text(self.sql[name]), {"corp_id": self.corp_id})
        return parse_db_time(value.scalar_one_or_none())

    def applied(self, entity_type: str, keys: Iterable[str], since: datetime) -> list[Event]:
        """Applied events of ``keys`` from ``since`` on: replayed with a late one, so the result is what
        in-order arrival would have produced."""
        statement = expanding(self.sql["select_applied"], "keys")
        found: list[Event] = []
        for chunk in in_chunks(set(keys)):
            found += self._events(statement, entity_type=entity_type, keys=chunk, since=db_time(since, self.dialect))
        return found

    def applied_renames(self, since: datetime) -> list[Event]:
        return self._events(text(self.sql["select_applied_renames"]), since=db_time(since, self.dialect))

    def mark(self, status: str, event_ids: Iterable[int], run_id: str, now: datetime) -> None:
        """End events as ``applied`` or ``superseded`` (events another apply already decided stay as they are)."""
        statement = expanding(self.sql["mark_handled"], "event_ids")
        params = {"corp_id": self.corp_id, "status": status, "applied_at": db_time(now, self.dialect)}
        for chunk in in_chunks(set(event_ids)):
            self.conn.execute(statement, params | {"event_ids": chunk, "run_id": run_id})

    def set_aside(self, reasons: Mapping[str, Iterable[int]], run_id: str, now: datetime) -> None:
        """End events about entities outside the department scope as ``out_of_scope``, with the reason."""
        statement = expanding(self.sql["mark_out_of_scope"], "event_ids")
        params = {"corp_id": self.corp_id, "run_id": run_id, "applied_at": db_time(now, self.dialect)}
        for reason, event_ids in reasons.items():
            for chunk in in_chunks(set(event_ids)):
                self.conn.execute(statement, params | {"event_ids": chunk, "reason": reason})

    def fail(self, reasons: Mapping[str, Iterable[int]], run_id: str) -> None:
        """attempts + 1 with the reason (one line, no member data, no secrets); ``dead`` at ``max_attempts``."""
        statement = expanding(self.sql["mark_failed"], "event_ids")
        params = {"corp_id": self.corp_id, "max_attempts": self.max_attempts, "run_id": run_id}
        for reason, event_ids in reasons.items():
            for chunk in in_chunks(set(event_ids)):
                self.conn.execute(statement, params | {"event_ids": chunk, "last_error": reason})
