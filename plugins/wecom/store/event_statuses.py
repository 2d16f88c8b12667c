"""Keep the callback events table's status check in step with ``wecom.runs.EventStatus``.

A table created before a status was added refuses that status through its CHECK constraint, and no
``ALTER TABLE ... ADD COLUMN`` can change that. ``widen_event_statuses`` reads the constraint and,
when a status is missing, widens it in the caller's transaction (``schema_changes/event_statuses.sql``):
PostgreSQL replaces the constraint; SQLite, which cannot alter one, rebuilds the table under the
current DDL and copies every row, keeping the event ids.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, inspect, text

from wecom.runs import EventStatus
from wecom.store.sql import read_named_statements, read_statements

log = logging.getLogger(__name__)

UPGRADE = "schema_changes/event_statuses.sql"
EVENTS_DDL = "schema/30_callback_events.sql"
TABLE = "wecom_callback_events"


def missing_statuses(definition: str | None) -> list[str]:
    """The statuses a constraint (its DDL text) does not name; none when there is no table yet."""
    if definition is None:
        return []
    return [status for status in EventStatus if f"'{status}'" not in definition]


def widen_event_statuses(conn: Connection) -> None:
    """Let the events table hold every status of ``EventStatus``; a no-op once it does."""
    dialect = conn.dialect.name
    sql = read_named_statements(UPGRADE, dialect)
    definition = conn.execute(text(sql[f"{dialect}_definition"])).scalar_one_or_none()
    missing = missing_statuses(definition)
    if not missing:
        return
    log.info("%s: the status check predates %s; widening it", TABLE, ", ".join(missing))
    if dialect == "postgresql":
        conn.execute(text(sql["postgresql_widen"]))
        return
    old_columns = [c["name"] for c in inspect(conn).get_columns(TABLE)]
    conn.execute(text(sql["sqlite_set_aside"]))
    ddl = read_statements(EVENTS_DDL, dialect)
    for statement in ddl:
        if statement.lstrip().upper().startswith("CREATE TABLE"):
            conn.execute(text(statement))
    new_columns = {c["name"] for c in inspect(conn).get_columns(TABLE)}
    columns = ", ".join(c for c in old_columns if c in new_columns)
    conn.execute(text(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {TABLE}_before_upgrade"))
    conn.execute(text(sql["sqlite_drop_old"]))  # its indexes go with it: create them on the new table
    for statement in ddl:
        conn.execute(text(statement))
