"""Load a normalized snapshot into the directory tables, in one transaction.

Each table is staged into a temporary table with the database's bulk path
(COPY on PostgreSQL, ``executemany`` on SQLite), then merged by the
statements in ``include/sql/merge/``: rows whose ``row_hash`` is unchanged
are not rewritten, rows missing from a complete snapshot are soft-deleted,
rows that come back are revived. Every write is ordered by observation time:
a snapshot older than one already loaded changes nothing (status ``stale``),
and rows a newer callback wrote are left alone.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, text

from wecom.sql import db_time, parse_db_time, read_named_statements, read_statement, schema_statements

log = logging.getLogger("wecom.loader")

# Merge order matters: link tables look at the staged entities they belong to.
MERGE_FILES: dict[str, str] = {
    "wecom_departments": "merge/departments.sql",
    "wecom_users": "merge/users.sql",
    "wecom_user_departments": "merge/user_departments.sql",
    "wecom_department_leaders": "merge/department_leaders.sql",
    "wecom_user_direct_leaders": "merge/user_direct_leaders.sql",
    "wecom_department_closure": "merge/department_closure.sql",
}
SOFT_DELETED = frozenset({"wecom_departments", "wecom_users"})
RUN_COUNT_PREFIX = {
    "wecom_departments": "departments",
    "wecom_users": "users",
    "wecom_user_departments": "memberships",
}
RUN_COUNT_COLUMNS = tuple(
    f"{RUN_COUNT_PREFIX[table]}_{what}"
    for table in RUN_COUNT_PREFIX
    for what in ("inserted", "updated", "deleted", "revived")
    if what != "revived" or table in SOFT_DELETED
)


@dataclass
class TablePlan:
    """What a merge does (or would do) to one table."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    revived: int = 0
    current: int = 0


@dataclass
class RunRecord:
    """The ``wecom_sync_runs`` facts that come from outside the loader."""

    dag_id: str
    run_id: str
    corp_id: str
    kind: str = "full"
    logical_date: datetime | None = None
    observed_at: datetime | None = None
    started_at: datetime | None = None
    strategy: str | None = None
    strategy_reason: str | None = None
    api_calls_by_endpoint: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    departments_seen: int | None = None
    users_seen: int | None = None
    message: str | None = None


@dataclass
class LoadResult:
    status: str
    plans: dict[str, TablePlan]
    rows_written: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rows_written": self.rows_written,
            "message": self.message,
            "tables": {name: asdict(plan) for name, plan in self.plans.items()},
        }


class DirectoryLoader:
    """Writes snapshots and run rows to one target database (sqlite or postgresql)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def ensure_schema(self) -> None:
        """Create every table and index that is missing; safe to run before every sync."""
        with self.engine.begin() as conn:
            for statement in schema_statements(self.dialect):
                conn.execute(text(statement))

    def load_snapshot(
        self,
        tables: Mapping[str, Iterable[pd.DataFrame]],
        *,
        run: RunRecord,
        observed_at: datetime,
        complete: bool,
    ) -> LoadResult:
        """Merge every table of one snapshot and record the run, all or nothing."""
        now = datetime.now(UTC)
        params = {
            "corp_id": run.corp_id,
            "observed_at": db_time(observed_at, self.dialect),
            "now": db_time(now, self.dialect),
            "complete": complete,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
        }
        with self.engine.begin() as conn:
            newer = parse_db_time(
                conn.execute(
                    text(read_statement("sync_runs/latest_full_snapshot.sql", self.dialect)), params
                ).scalar_one_or_none()
            )
            if newer is not None and newer > observed_at:
                result = LoadResult(
                    status="stale",
                    plans={},
                    rows_written=0,
                    message=(
                        f"a newer snapshot (observed {newer.isoformat()}) is already loaded; this one "
                        f"(observed {observed_at.isoformat()}) changes nothing"
                    ),
                )
            else:
                result = self._merge(conn, tables, params, complete)
            self._write_run(conn, run, result, observed_at, now)
        log.info("load %s: %s rows written; %s", result.status, result.rows_written, result.message)
        return result

    def _merge(
        self, conn: Connection, tables: Mapping[str, Iterable[pd.DataFrame]], params: dict, complete: bool
    ) -> LoadResult:
        statements = {name: read_named_statements(path, self.dialect) for name, path in MERGE_FILES.items()}
        for name, sql in statements.items():
            for step in ("drop_stage", "create_stage", "index_stage"):
                conn.execute(text(sql[step]))
            staged = sum(self._stage(conn, f"stage_{name}", frame) for frame in tables.get(name, ()))
            conn.execute(text(sql["analyze_stage"]))
            log.info("staged %s rows for %s", staged, name)
        for sql in statements.values():
            conn.execute(text(sql["drop_newer"]), params)
        plans = {
            name: TablePlan(**conn.execute(text(sql["plan"]), params).mappings().one())
            for name, sql in statements.items()
        }
        if not complete:
            for name in SOFT_DELETED:
                plans[name].deleted = 0
        written = 0
        for name, sql in statements.items():
            written += conn.execute(text(sql["upsert"]), params).rowcount
            if name in SOFT_DELETED:
                if complete:
                    written += conn.execute(text(sql["soft_delete"]), params).rowcount
            else:
                written += conn.execute(text(sql["delete_missing"]), params).rowcount
        for sql in statements.values():
            conn.execute(text(sql["drop_stage"]))
        for name, plan in plans.items():
            log.info(
                "%s: %s inserted, %s updated, %s revived, %s deleted",
                name,
                plan.inserted,
                plan.updated,
                plan.revived,
                plan.deleted,
            )
        return LoadResult(
            status="success" if complete else "partial",
            plans=plans,
            rows_written=written,
            message="complete snapshot" if complete else "incomplete snapshot: nothing was deleted",
        )

    def _stage(self, conn: Connection, table: str, frame: pd.DataFrame) -> int:
        """Bulk-insert one chunk into a stage table with the dialect's fast path."""
        if frame.empty:
            return 0
        columns = list(frame.columns)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            if self.dialect == "postgresql":
                buffer = io.StringIO()
                frame.to_csv(buffer, index=False, header=False, na_rep="\\N", quoting=csv.QUOTE_MINIMAL)
                buffer.seek(0)
                cursor.copy_expert(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
                )
            else:
                rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
                placeholders = ", ".join("?" for _ in columns)
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)
        finally:
            cursor.close()
        return len(frame)

    def _write_run(
        self, conn: Connection, run: RunRecord, result: LoadResult, observed_at: datetime, finished: datetime
    ) -> None:
        counts = {
            f"{prefix}_{what}": getattr(result.plans.get(table, TablePlan()), what)
            for table, prefix in RUN_COUNT_PREFIX.items()
            for what in ("inserted", "updated", "deleted", "revived")
            if f"{prefix}_{what}" in RUN_COUNT_COLUMNS
        }
        message = "; ".join(m for m in (result.message, run.message) if m)
        self.record_run(
            conn,
            run,
            status=result.status,
            observed_at=observed_at,
            finished_at=finished,
            counts=counts,
            message=message,
        )

    def record_run(
        self,
        conn: Connection,
        run: RunRecord,
        *,
        status: str,
        observed_at: datetime | None,
        finished_at: datetime | None,
        counts: Mapping[str, int] | None = None,
        message: str | None = None,
    ) -> None:
        """Insert or rewrite the run's ``wecom_sync_runs`` row (reruns overwrite, never duplicate)."""
        row = dict.fromkeys(RUN_COUNT_COLUMNS, 0) | dict(counts or {})
        row |= {
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "corp_id": run.corp_id,
            "kind": run.kind,
            "logical_date": db_time(run.logical_date, self.dialect),
            "observed_at": db_time(observed_at, self.dialect),
            "started_at": db_time(run.started_at, self.dialect),
            "finished_at": db_time(finished_at, self.dialect),
            "status": status,
            "strategy": run.strategy,
            "strategy_reason": run.strategy_reason,
            "api_calls": sum(run.api_calls_by_endpoint.values()),
            "api_calls_by_endpoint": json.dumps(run.api_calls_by_endpoint, sort_keys=True),
            "throttled": run.throttled,
            "departments_seen": run.departments_seen,
            "users_seen": run.users_seen,
            "message": message if message is not None else run.message,
        }
        conn.execute(text(read_statement("sync_runs/upsert_run.sql", self.dialect)), row)

    def record_failed_run(self, run: RunRecord, message: str) -> None:
        """Record a run that failed before or during load; its own transaction."""
        with self.engine.begin() as conn:
            self.record_run(
                conn,
                run,
                status="failed",
                observed_at=run.observed_at,
                finished_at=datetime.now(UTC),
                message=message,
            )

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    text(read_statement("sync_runs/get_run.sql", self.dialect)),
                    {"dag_id": dag_id, "run_id": run_id},
                )
                .mappings()
                .one_or_none()
            )
        return dict(row) if row else None
