"""Bring a target database's tables up to this version's DDL, and skip it when they already are.

Every DAG run starts with ``ensure_schema``; running the whole DDL each time (a dozen
``CREATE ... IF NOT EXISTS`` and a column inspection per added column) costs round trips
for nothing once the database is current. The DDL's hash (every statement of ``schema/`` and
``schema_changes/`` as rendered for the dialect) is kept in ``wecom_schema_version``; when it
matches and every table the DDL creates is there, the check is that one row's read. A new table,
column or index in those files changes the hash, so nothing has to remember to bump a version.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Connection, Engine, bindparam, inspect, text
from sqlalchemy.exc import DBAPIError

from wecom.store.event_statuses import widen_event_statuses
from wecom.store.sql import db_time, read_named_statements, schema_statements

log = logging.getLogger(__name__)

ADDED_COLUMNS = "schema_changes/added_columns.sql"
VERSION_SQL = "schema_version/version.sql"
_CREATED_TABLE = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)
_UNDEFINED_TABLE = "42P01"


@cache
def ddl_version(dialect: str) -> tuple[str, tuple[str, ...]]:
    """The DDL's hash for ``dialect`` and the tables it creates."""
    statements = schema_statements(dialect) + list(read_named_statements(ADDED_COLUMNS, dialect).values())
    digest = hashlib.sha256("\n;\n".join([dialect, *statements]).encode("utf-8")).hexdigest()
    tables = tuple(sorted({m for s in statements for m in _CREATED_TABLE.findall(s)}))
    return digest, tables


def ensure_schema(engine: Engine) -> bool:
    """Create every table, index and column that is missing; True if any DDL had to run.

    Safe to run before every sync and from several processes at once: every statement is idempotent.
    """
    dialect = engine.dialect.name
    digest, tables = ddl_version(dialect)
    with engine.connect() as conn:
        if _is_current(conn, dialect, digest, tables):
            return False
    with engine.begin() as conn:
        for statement in schema_statements(dialect):
            conn.execute(text(statement))
        for name, statement in read_named_statements(ADDED_COLUMNS, dialect).items():
            table, column = name.split("__")
            if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
                log.info("adding column %s.%s (the table predates it)", table, column)
                conn.execute(text(statement))
        widen_event_statuses(conn)
        record = read_named_statements(VERSION_SQL, dialect)["record"]
        conn.execute(text(record), {"ddl_hash": digest, "applied_at": db_time(datetime.now(UTC), dialect)})
    log.info("schema brought up to version %s", digest[:12])
    return True


def _is_current(conn: Connection, dialect: str, digest: str, tables: tuple[str, ...]) -> bool:
    """One query: the recorded hash is this DDL's and every table is there. A database that has no
    version row yet (new, or made by an earlier version of this package) is not current; a
    database that cannot be reached raises as before."""
    statement = text(read_named_statements(VERSION_SQL, dialect)[f"read_{dialect}"])
    try:
        row = conn.execute(statement.bindparams(bindparam("tables", expanding=True)), {"tables": tables}).first()
    except DBAPIError as error:
        if _table_missing(error):
            return False
        raise
    return row is not None and row.ddl_hash == digest and row.tables_present == len(tables)


def _table_missing(error: DBAPIError) -> bool:
    """Whether a failed read says the version table does not exist (PostgreSQL 42P01, SQLite's message)."""
    orig = error.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code == _UNDEFINED_TABLE or "no such table" in str(orig)
