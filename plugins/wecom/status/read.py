"""Reading the status page's facts from one target database (``include/sql/status/status.sql``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, inspect, text

from wecom.status.model import ConfiguredCompany, CorpStatus, DatabaseStatus, EventQueueStatus, Row, WaitingCompany
from wecom.store.sql import parse_db_time, read_named_statements

STATUS_SQL = "status/status.sql"
HISTORY_RUNS = 60
EVENT_ROWS = 10
TIME_COLUMNS = ("logical_date", "observed_at", "started_at", "finished_at", "last_received_at")
_NEVER = datetime.min.replace(tzinfo=UTC)


def run_row(mapping: Mapping[str, Any]) -> Row:
    """A ``wecom_sync_runs`` (or events) row as a dict with aware datetimes (SQLite stores text)."""
    row = dict(mapping)
    for column in TIME_COLUMNS:
        if column in row:
            row[column] = parse_db_time(row[column])
    return row


def event_queue_status(conn: Connection, corp_id: str) -> EventQueueStatus:
    sql = read_named_statements(STATUS_SQL, conn.dialect.name)
    rows = conn.execute(text(sql["event_counts"]), {"corp_id": corp_id}).all()
    oldest = next((parse_db_time(first) for status, _, first in rows if status == "pending"), None)
    return EventQueueStatus({status: n for status, n, _ in rows}, oldest)


def company_name(dag_id: str) -> str:
    """The company a DAG belongs to: the inverse of ``Company.dag_id_for`` (``<base>__<name>``, or the
    base alone for the default company)."""
    return dag_id.partition("__")[2] or "default"


def _names(
    corp_ids: set[str], dag_rows: Iterable[Any], conn_rows: Iterable[Any], companies: Sequence[ConfiguredCompany]
) -> dict[str, tuple[str, ...]]:
    """Each corp's company names, the one with the newest run first; callbacks name a company through
    the ``wecom`` connection that received them."""
    latest: dict[tuple[str, str], datetime] = {}
    for corp_id, dag_id, last_at in dag_rows:
        key = (corp_id, company_name(dag_id))
        latest[key] = max(latest.get(key, _NEVER), parse_db_time(last_at) or _NEVER)
    by_conn = {c.wecom_conn_id: c.name for c in companies}
    for corp_id, conn_id in conn_rows:
        if conn_id in by_conn:
            latest.setdefault((corp_id, by_conn[conn_id]), _NEVER)
    ordered = sorted(latest.items(), key=lambda item: item[1], reverse=True)
    return {corp_id: tuple(name for (corp, name), _ in ordered if corp == corp_id) for corp_id in corp_ids}


def _first(conn: Connection, statement: str, **params: Any) -> Row | None:
    found = conn.execute(text(statement), params).mappings().first()
    return run_row(found) if found else None


def _rows(conn: Connection, statement: str, **params: Any) -> list[Row]:
    return [run_row(r) for r in conn.execute(text(statement), params).mappings()]


def _runs(conn: Connection, sql: dict[str, str], corp_id: str, history: int) -> dict[str, Any]:
    return {
        "last_full": _first(conn, sql["last_run"], corp_id=corp_id, kind="full"),
        "last_delta": _first(conn, sql["last_run"], corp_id=corp_id, kind="delta"),
        "last_guarded": _first(conn, sql["last_guarded_run"], corp_id=corp_id),
        "last_snapshot": _first(conn, sql["last_snapshot_run"], corp_id=corp_id),
        "history": _rows(conn, sql["full_run_history"], corp_id=corp_id, limit=history)[::-1],
    }


def _events(conn: Connection, sql: dict[str, str], corp_id: str, limit: int) -> dict[str, Any]:
    in_status = sql["events_in_status"]
    return {
        "events": event_queue_status(conn, corp_id),
        "dead_events": _rows(conn, in_status, corp_id=corp_id, status="dead", limit=limit),
        "failed_events": _rows(conn, in_status, corp_id=corp_id, status="failed", limit=limit),
        "out_of_scope_events": _rows(conn, in_status, corp_id=corp_id, status="out_of_scope", limit=limit),
    }


def read_status(
    engine: Engine,
    companies: Sequence[ConfiguredCompany] = (),
    *,
    history: int = HISTORY_RUNS,
    events: int = EVENT_ROWS,
) -> list[CorpStatus]:
    """Every company found in ``engine``, by corp id; an empty list when no sync or callback wrote there yet.

    ``companies`` (the ``wecom_companies`` entries) name corps known only from their callbacks.
    """
    sql = read_named_statements(STATUS_SQL, engine.dialect.name)
    tables = inspect(engine)
    has_runs, has_events = tables.has_table("wecom_sync_runs"), tables.has_table("wecom_callback_events")
    with engine.connect() as conn:
        dag_rows = conn.execute(text(sql["run_sources"])).all() if has_runs else []
        conn_rows = conn.execute(text(sql["event_sources"])).all() if has_events else []
        corp_ids = {row[0] for row in dag_rows} | {row[0] for row in conn_rows}
        names = _names(corp_ids, dag_rows, conn_rows, companies)
        result = []
        for corp_id in sorted(corp_ids):
            facts = {
                **(_runs(conn, sql, corp_id, history) if has_runs else {}),
                **(_events(conn, sql, corp_id, events) if has_events else {}),
            }
            result.append(CorpStatus(corp_id, names[corp_id], **facts))
    return result


def waiting_companies(corps: Sequence[CorpStatus], companies: Sequence[ConfiguredCompany]) -> list[WaitingCompany]:
    """The configured companies that no corp of this database is named after: nothing ran for them yet."""
    seen = {name for corp in corps for name in corp.names}
    return [WaitingCompany(c.name, c.dag_id) for c in companies if c.name not in seen]


def read_database(conn_id: str, engine: Engine, companies: Sequence[ConfiguredCompany] = ()) -> DatabaseStatus:
    """One target database for the page: its corps, and the companies configured there that have not run."""
    corps = read_status(engine, companies)
    return DatabaseStatus(conn_id, corps, waiting_companies(corps, companies))
