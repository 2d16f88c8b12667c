"""Store parsed events in ``wecom_callback_events`` exactly once, and check the table once.

WeCom redelivers an event until it gets a 200, in no guaranteed order, so
every distinct decrypted message is one row (keyed by its sha256) and the
apply DAG does the rest. Three rules keep the receiver fast and its answers
bounded under any database: the table is checked once per engine
(``check_events_table``), never with DDL per request, so a role that may only
insert runs as fast as the owner; rows are inserted in dedup-key order with
``ON CONFLICT DO NOTHING``, so concurrent receivers wait on each other in one
order and cannot deadlock; a redelivery only counts itself and skips a row
another transaction holds (the apply DAG marking it, a load superseding it)
instead of waiting for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache, cached_property

from sqlalchemy import Connection, Engine, TextClause, inspect, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from wecom.callbacks.parse import ParsedEvent, dedup_key
from wecom.errors import EventsTableError
from wecom.store.sql import db_time, read_named_statements, read_statements

TABLE = "wecom_callback_events"
SCHEMA_FILE = "schema/30_callback_events.sql"
INSERT_FILE = "callback_events/insert_events.sql"
REDELIVERY_FILE = "callback_events/count_redelivery.sql"
GRANTS_FILE = "include/sql/grants/receiver.sql"

# What the receiver's two statements need, exactly what GRANTS_FILE grants (PostgreSQL).
RECEIVER_PRIVILEGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("INSERT", ()),
    ("SELECT", ("event_id", "corp_id", "dedup_key", "delivery_count")),
    ("UPDATE", ("delivery_count", "last_received_at")),
)
INSERTED_COLUMNS = (
    "conn_id",
    "corp_id",
    "dedup_key",
    "received_at",
    "last_received_at",
    "create_time",
    "change_type",
    "entity_type",
    "entity_id",
    "new_entity_id",
    "payload",
    "status",
)

# SQLSTATEs a retry of the same transaction can cure.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_CAUSES = {
    "55P03": "lock timeout: the events table or row is locked by another session",
    "57014": "statement timeout: the database did not finish the insert in time",
    "40P01": "deadlock with another session, retries exhausted",
    "42501": "permission denied (see include/sql/grants/receiver.sql)",
}


@dataclass(frozen=True)
class NewEvent:
    """One event to store, with where and when it arrived."""

    corp_id: str
    conn_id: str | None
    event: ParsedEvent
    message: str
    received_at: datetime

    @cached_property
    def key(self) -> tuple[str, str]:
        return self.corp_id, dedup_key(self.message)


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A transaction on ``bind``; joins the caller's when a connection is already in one."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            yield connection
    elif bind.in_transaction():
        yield bind
    else:
        with bind.begin():
            yield bind


@cache
def _insert_statement(dialect: str) -> TextClause:
    return text(read_named_statements(INSERT_FILE, dialect)[dialect])


@cache
def _redelivery_statement(dialect: str) -> TextClause:
    return text(read_named_statements(REDELIVERY_FILE, dialect)[dialect])


def ensure_callback_events_table(bind: Engine | Connection) -> None:
    """Create ``wecom_callback_events`` and its indexes if missing (idempotent; needs CREATE)."""
    with _transaction(bind) as connection:
        for statement in read_statements(SCHEMA_FILE, connection.dialect.name):
            connection.execute(text(statement))


def _missing_privilege(connection: Connection) -> str | None:
    for privilege, columns in RECEIVER_PRIVILEGES:
        if not columns:
            held = connection.execute(text("SELECT has_table_privilege(:t, :p)"), {"t": TABLE, "p": privilege})
            if not held.scalar_one():
                return f"{privilege} ON {TABLE}"
        for column in columns:
            query = text("SELECT has_column_privilege(:t, :c, :p)")
            if not connection.execute(query, {"t": TABLE, "c": column, "p": privilege}).scalar_one():
                return f"{privilege} ({column}) ON {TABLE}"
    return None


def check_events_table(engine: Engine) -> None:
    """Once per engine: the table exists (created here only if missing), with its columns and rights.

    Raises ``EventsTableError`` with one line naming what is missing, e.g. the
    grant a least-privilege role lacks; connection failures propagate.
    """
    with engine.connect() as connection:
        role = connection.execute(text("SELECT current_user")).scalar_one() if engine.dialect.name != "sqlite" else ""
        if not inspect(connection).has_table(TABLE):
            try:
                ensure_callback_events_table(connection)
                connection.commit()
            except DBAPIError as exc:
                raise EventsTableError(
                    f"table {TABLE} does not exist and role {role} may not create it ({describe_failure(exc)}): "
                    "run the directory sync once, or the owner runs include/sql/schema/30_callback_events.sql"
                ) from None
        columns = {c["name"] for c in inspect(connection).get_columns(TABLE)}
        absent = [c for c in INSERTED_COLUMNS if c not in columns]
        if absent:
            raise EventsTableError(f"table {TABLE} lacks columns {absent}: run the directory sync to upgrade it")
        if engine.dialect.name == "postgresql":
            missing = _missing_privilege(connection)
            if missing:
                raise EventsTableError(f"role {role} lacks GRANT {missing} (see {GRANTS_FILE})")


def store_events(connection: Connection, events: Sequence[NewEvent]) -> list[bool]:
    """Store ``events`` in the caller's transaction; per event, True if new, False if a redelivery.

    One statement inserts the whole batch (the rows as one JSON parameter), in (corp_id,
    dedup_key) order whatever the arrival order, so two receivers inserting overlapping batches
    wait for each other in one order instead of deadlocking. A redelivery (of a stored event, or
    of one earlier in the same batch) leaves the row as it is apart from ``delivery_count`` and
    ``last_received_at``.
    """
    dialect = connection.dialect.name
    first: dict[tuple[str, str], int] = {}
    for index in sorted(range(len(events)), key=lambda i: events[i].key):
        first.setdefault(events[index].key, index)
    rows = [_row(events[index], dialect) for index in first.values()]
    inserted = {tuple(r) for r in connection.execute(_insert_statement(dialect), {"events": json.dumps(rows)})}
    results: list[bool] = []
    for index, item in enumerate(events):
        is_new = first[item.key] == index and item.key in inserted
        results.append(is_new)
        if not is_new:
            corp_id, key = item.key
            counted = {"corp_id": corp_id, "dedup_key": key, "received_at": db_time(item.received_at, dialect)}
            connection.execute(_redelivery_statement(dialect), counted)
    return results


def _row(item: NewEvent, dialect: str) -> dict[str, str | None]:
    """One event's inserted columns, as JSON values: timestamps as the dialect stores them (ISO text)."""
    corp_id, key = item.key
    return {
        "conn_id": item.conn_id,
        "corp_id": corp_id,
        "dedup_key": key,
        "received_at": _json_time(item.received_at, dialect),
        "create_time": _json_time(item.event.create_time, dialect),
        "change_type": item.event.change_type,
        "entity_type": item.event.entity_type,
        "entity_id": item.event.entity_id,
        "new_entity_id": item.event.new_entity_id,
        "payload": json.dumps(item.event.payload, ensure_ascii=False, separators=(",", ":")),
        "status": item.event.status,
    }


def _json_time(value: datetime, dialect: str) -> str:
    stored = db_time(value, dialect)
    return stored if isinstance(stored, str) else stored.isoformat()


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error (psycopg2 ``pgcode``, psycopg ``sqlstate``), if any."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)


def describe_failure(exc: BaseException) -> str:
    """A one-line cause for the log, without the driver's message (it can name hosts and users)."""
    if isinstance(exc, EventsTableError):
        return str(exc)
    if isinstance(exc, PoolTimeoutError):
        return "no database connection free in time (pool exhausted)"
    cause = _CAUSES.get(sqlstate(exc) or "")
    if cause:
        return cause
    if isinstance(exc, DBAPIError) and "database is locked" in str(exc.orig):
        return "SQLite database is locked by another writer (busy timeout)"
    if isinstance(exc, SQLAlchemyError):
        return f"database unavailable ({type(exc).__name__})"
    return f"database write failed ({type(exc).__name__})"
