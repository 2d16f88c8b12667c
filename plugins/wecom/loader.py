"""Load a normalized snapshot into the directory tables, in one transaction.

Each table is staged into a temporary table with the database's bulk path
(COPY on PostgreSQL, ``executemany`` on SQLite), then merged by the
statements in ``include/sql/merge/``: rows whose ``row_hash`` is unchanged
are not rewritten, rows missing from a complete snapshot are soft-deleted,
rows that come back are revived. Every write is ordered by observation time:
a snapshot older than one already loaded changes nothing (status ``stale``),
and rows a newer callback wrote are left alone. ``record_if_unchanged`` lets a
run whose snapshot repeats the last one skip all of that (status ``unchanged``).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine, inspect, text

from wecom.directory.rights import Rights, advice, describe, judge, newly_lost, restored
from wecom.errors import MassDeletionError
from wecom.runs import SNAPSHOT_STATUSES, RunStatus
from wecom.sql import db_time, parse_db_time, read_named_statements, read_statement, schema_statements
from wecom.store.withheld_values import WithheldValues

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
ADDED_COLUMNS = "schema_changes/added_columns.sql"
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


CHANGES = ("inserted", "updated", "revived", "deleted")
# Tables whose changes count as drift: what callbacks should already have applied.
DRIFT_TABLES = ("wecom_departments", "wecom_users", "wecom_user_departments")


@dataclass
class TablePlan:
    """What a merge does (or would do) to one table, with a few sample ids per change."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    revived: int = 0
    current: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return self.inserted + self.updated + self.deleted + self.revived


@dataclass(frozen=True)
class LoadOptions:
    """Per-run switches: the dry run and the mass-deletion guard (share of current rows, or a count)."""

    dry_run: bool = False
    allow_mass_delete: bool = False
    max_delete_share: float = 0.10
    max_delete_count: int | None = None
    sample_size: int = 10


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
    snapshot_digest: str | None = None
    withheld: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadResult:
    status: str
    plans: dict[str, TablePlan]
    rows_written: int
    message: str
    drift: dict[str, dict[str, int]] | None = None
    # Field groups this snapshot lost against the previous one (alert once), and the advice for them.
    newly_degraded: list[str] = field(default_factory=list)
    rights_advice: str | None = None

    @property
    def drift_total(self) -> int | None:
        return drift_total(self.drift)

    def plan_json(self) -> str | None:
        if not self.plans:
            return None
        return json.dumps({name: asdict(plan) for name, plan in self.plans.items()}, sort_keys=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rows_written": self.rows_written,
            "message": self.message,
            "drift_total": self.drift_total,
            "newly_degraded": self.newly_degraded,
            "tables": {
                name: {k: v for k, v in asdict(plan).items() if k != "samples"} for name, plan in self.plans.items()
            },
        }


def drift_total(drift: Mapping[str, Mapping[str, int]] | None) -> int | None:
    return None if drift is None else sum(sum(counts.values()) for counts in drift.values())


def guard_violation(plans: Mapping[str, TablePlan], options: LoadOptions) -> str | None:
    """Why this plan deletes too much, or None; the message says how to proceed."""
    if options.allow_mass_delete:
        return None
    problems = []
    for name in SOFT_DELETED:
        plan = plans[name]
        limit = options.max_delete_share * plan.current
        if options.max_delete_count is not None:
            limit = min(limit, options.max_delete_count)
        if plan.deleted and plan.deleted > limit:
            problems.append(f"{plan.deleted} of {plan.current} {name.removeprefix('wecom_')} (limit {int(limit)})")
    if not problems:
        return None
    return (
        "mass-deletion guard: this snapshot would soft-delete "
        + " and ".join(problems)
        + "; nothing was changed. If WeCom really lost them, trigger the DAG again with conf "
        '{"allow_mass_delete": true} (once), or check the secret\'s visible scope and the API answers first.'
    )


class DirectoryLoader:
    """Writes snapshots and run rows to one target database (sqlite or postgresql)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def ensure_schema(self) -> None:
        """Create every table, index and column that is missing; safe to run before every sync."""
        with self.engine.begin() as conn:
            for statement in schema_statements(self.dialect):
                conn.execute(text(statement))
            for name, statement in read_named_statements(ADDED_COLUMNS, self.dialect).items():
                table, column = name.split("__")
                if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
                    log.info("adding column %s.%s (the table predates it)", table, column)
                    conn.execute(text(statement))

    def latest_snapshot(self, corp_id: str, exclude: tuple[str, str] = ("", "")) -> datetime | None:
        """When the newest loaded full snapshot of a corp was observed (other than run ``exclude``)."""
        with self.engine.connect() as conn:
            return self._latest_snapshot(conn, {"corp_id": corp_id, "dag_id": exclude[0], "run_id": exclude[1]})

    def _latest_snapshot(self, conn: Connection, params: Mapping[str, Any]) -> datetime | None:
        last = self._last_snapshot_run(conn, params)
        return None if last is None else parse_db_time(last["observed_at"])

    def _last_snapshot_run(self, conn: Connection, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        sql = read_statement("sync_runs/latest_full_snapshot.sql", self.dialect)
        return conn.execute(text(sql), params).mappings().one_or_none()

    def record_if_unchanged(self, run: RunRecord) -> LoadResult | None:
        """Record the run as ``unchanged`` when loading its snapshot could only rewrite what is there.

        That holds when the newest recorded snapshot was complete and has the
        same digest (``run.snapshot_digest``), no callback event changed the
        tables since it was observed or waits to, and the tables hold as many
        live departments and members as WeCom listed. Then transform and load
        would write nothing, and the caller skips them. Otherwise returns None
        after logging why the full work is needed.
        """
        if run.observed_at is None:
            raise ValueError("record_if_unchanged needs the run's observation time")
        with self.engine.begin() as conn:
            reason = self._changed_reason(conn, run, run.observed_at)
            if reason:
                log.info("transforming and loading: %s", reason)
                return None
            now = datetime.now(UTC)
            result = LoadResult(
                status="unchanged",
                plans={},
                rows_written=0,
                message=(
                    "WeCom answered exactly what the last snapshot held and nothing else changed the tables "
                    'since: nothing transformed or loaded (trigger with conf {"force": true} for a full compare)'
                ),
                drift={name: {} for name in DRIFT_TABLES},
            )
            self._write_run(conn, run, result, run.observed_at, now)
        log.info("load unchanged: 0 rows written; %s", result.message)
        return result

    def _changed_reason(self, conn: Connection, run: RunRecord, observed_at: datetime) -> str | None:
        """Why this snapshot may differ from what the tables hold, or None when it cannot."""
        if run.snapshot_digest is None:
            return "the snapshot is incomplete"
        params = {"corp_id": run.corp_id, "dag_id": run.dag_id, "run_id": run.run_id}
        last = self._last_snapshot_run(conn, params)
        if last is None:
            return "no snapshot was loaded before"
        since = parse_db_time(last["observed_at"])
        name = f"the last snapshot (run {last['run_id']}, observed {since.isoformat()})"
        reason = _differs_from_last(run, last["status"], last["snapshot_digest"], since, observed_at)
        if reason:
            return f"{name} {reason}"
        sql = read_named_statements("sync_runs/unchanged.sql", self.dialect)
        events = conn.execute(text(sql["callback_writes"]), params | {"since": db_time(since, self.dialect)})
        if count := events.scalar_one():
            return f"{count} callback events changed the tables since {name}, or are waiting to"
        live = conn.execute(text(sql["live_rows"]), params).one()
        if (live.departments, live.users) != (run.departments_seen, run.users_seen):
            return (
                f"the tables hold {live.departments} departments and {live.users} members where WeCom lists "
                f"{run.departments_seen} and {run.users_seen} (changed outside this DAG?)"
            )
        return None

    def load_snapshot(
        self,
        tables: Mapping[str, Iterable[pd.DataFrame | pa.RecordBatch]],
        *,
        run: RunRecord,
        observed_at: datetime,
        complete: bool,
        options: LoadOptions | None = None,
    ) -> LoadResult:
        """Merge every table of one snapshot and record the run, all or nothing.

        Raises ``MassDeletionError`` (after recording the run as ``guard_tripped``,
        with the directory untouched) when the snapshot would delete too much.
        """
        options = options or LoadOptions()
        now = datetime.now(UTC)
        params = {
            "corp_id": run.corp_id,
            "observed_at": db_time(observed_at, self.dialect),
            "now": db_time(now, self.dialect),
            "complete": complete,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "sample_size": options.sample_size,
        }
        with self.engine.begin() as conn:
            previous = self._latest_snapshot(conn, params)
            if previous is not None and previous > observed_at:
                result = LoadResult(
                    status="stale",
                    plans={},
                    rows_written=0,
                    message=(
                        f"a newer snapshot (observed {previous.isoformat()}) is already loaded; this one "
                        f"(observed {observed_at.isoformat()}) changes nothing"
                    ),
                )
            else:
                result = self._merge(conn, tables, params, complete, options, first=previous is None)
            self._write_run(conn, run, result, observed_at, now)
        log.info("load %s: %s rows written; %s", result.status, result.rows_written, result.message)
        if result.status == "guard_tripped":
            raise MassDeletionError(result.message)
        return result

    def _merge(
        self,
        conn: Connection,
        tables: Mapping[str, Iterable[pd.DataFrame | pa.RecordBatch]],
        params: dict,
        complete: bool,
        options: LoadOptions,
        *,
        first: bool,
    ) -> LoadResult:
        statements = {name: read_named_statements(path, self.dialect) for name, path in MERGE_FILES.items()}
        shared = {name: read_named_statements("merge/common.sql", self.dialect, name) for name in MERGE_FILES}
        withheld = WithheldValues(conn, self.dialect, params["corp_id"])
        for name, sql in statements.items():
            conn.execute(text(shared[name]["drop_stage"]))
            conn.execute(text(shared[name]["drop_diff"]))
            conn.execute(text(sql["create_stage"]))
            conn.execute(text(sql["index_stage"]))
            batches = withheld.complete(name, tables.get(name, ()))
            staged = sum(self._stage(conn, f"stage_{name}", frame) for frame in batches)
            conn.execute(text(shared[name]["analyze_stage"]))
            log.info("staged %s rows for %s", staged, name)
        withheld.log_summary()
        for sql in statements.values():
            conn.execute(text(sql["drop_newer"]), params)
        plans = {name: self._plan(conn, sql, shared[name], params) for name, sql in statements.items()}
        for name, plan in plans.items():
            log.info(
                "%s: %s inserted, %s updated, %s revived, %s deleted",
                name,
                plan.inserted,
                plan.updated,
                plan.revived,
                plan.deleted,
            )
        drift = None if first else {name: _counts(plans[name]) for name in DRIFT_TABLES}
        violation = guard_violation(plans, options)
        if options.dry_run:
            status, written = "dry_run", 0
            message = "dry run: the plan was computed, no directory table changed"
            if violation:
                message += "; a real run would stop here: " + violation
        elif violation:
            status, written, message = "guard_tripped", 0, violation
        else:
            written = self._apply(conn, statements, params)
            superseded = conn.execute(
                text(read_statement("callback_events/supersede_before_snapshot.sql", self.dialect)), params
            ).rowcount
            status = "success" if complete else "partial"
            message = "complete snapshot" if complete else "incomplete snapshot: nothing was deleted"
            if superseded:
                message += f"; {superseded} older callback events superseded"
        if drift is not None:
            log.info("drift from the callback-maintained state: %s changes %s", drift_total(drift), json.dumps(drift))
        for name in MERGE_FILES:
            conn.execute(text(shared[name]["drop_stage"]))
            conn.execute(text(shared[name]["drop_diff"]))
        return LoadResult(status=status, plans=plans, rows_written=written, message=message, drift=drift)

    def _plan(self, conn: Connection, sql: Mapping[str, str], shared: Mapping[str, str], params: dict) -> TablePlan:
        conn.execute(text(sql["create_diff"]), params)
        plan = TablePlan(**{row.change: row.n for row in conn.execute(text(shared["plan"]))})
        if "current" in sql:
            plan.current = conn.execute(text(sql["current"]), params).scalar_one()
        for change in CHANGES:
            if getattr(plan, change):
                sample = conn.execute(text(shared["sample"]), params | {"change": change}).scalars()
                plan.samples[change] = list(sample)
        return plan

    def _apply(self, conn: Connection, statements: Mapping[str, Mapping[str, str]], params: dict) -> int:
        """History first (it reads the diff against the old state), then the current tables."""
        written = 0
        for sql in statements.values():
            for step in ("history_close", "history_open", "upsert", "delete"):
                if step in sql:
                    written += conn.execute(text(sql[step]), params).rowcount
        return written

    def _stage(self, conn: Connection, table: str, chunk: pd.DataFrame | pa.RecordBatch) -> int:
        """Bulk-insert one chunk into a stage table with the dialect's fast path.

        Chunks go through Arrow: its C++ CSV writer feeds COPY several times
        faster than pandas' ``to_csv``, and its CSV is PostgreSQL's (a quoted
        ``""`` is empty text, a bare empty field is NULL).
        """
        batch = pa.Table.from_pandas(chunk, preserve_index=False) if isinstance(chunk, pd.DataFrame) else chunk
        if batch.num_rows == 0:
            return 0
        columns = ", ".join(batch.schema.names)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            if self.dialect == "postgresql":
                buffer = io.BytesIO()
                pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
                buffer.seek(0)
                cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
            else:
                rows = zip(*(column.to_pylist() for column in batch.columns), strict=True)
                placeholders = ", ".join("?" for _ in batch.schema.names)
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)
        finally:
            cursor.close()
        return batch.num_rows

    def _write_run(
        self, conn: Connection, run: RunRecord, result: LoadResult, observed_at: datetime, finished: datetime
    ) -> None:
        counts = {
            f"{prefix}_{what}": getattr(result.plans.get(table, TablePlan()), what)
            for table, prefix in RUN_COUNT_PREFIX.items()
            for what in ("inserted", "updated", "deleted", "revived")
            if f"{prefix}_{what}" in RUN_COUNT_COLUMNS
        }
        rights = self._judge_rights(conn, run, result)
        message = "; ".join(m for m in (result.message, run.message, _degraded_note(rights, result)) if m)
        self.record_run(
            conn,
            run,
            status=result.status,
            observed_at=observed_at,
            finished_at=finished,
            counts=counts,
            message=message,
            drift=result.drift,
            plan=result.plan_json(),
            rights=rights,
        )

    def _judge_rights(self, conn: Connection, run: RunRecord, result: LoadResult) -> Rights:
        """What this snapshot could not see against the previous one: a run that loaded (or repeated) a
        snapshot is degraded while it lacks a field group an earlier one could read; other runs only
        record what was withheld. Logs the change in the admin console's terms."""
        if result.status not in SNAPSHOT_STATUSES:
            return Rights(run.withheld)
        params = {"corp_id": run.corp_id, "dag_id": run.dag_id, "run_id": run.run_id}
        previous = Rights.from_row(self._last_snapshot_run(conn, params))
        rights = judge(run.withheld, previous)
        result.newly_degraded = newly_lost(rights, previous)
        if rights.degraded:
            result.rights_advice = advice(rights.lost, run.strategy, run.strategy_reason)
            news = "rights shrank since the last snapshot" if result.newly_degraded else "still degraded"
            log.warning(
                "%s: WeCom withholds %s; the stored values are kept. %s",
                news,
                describe({g: n for g, n in rights.withheld.items() if g in rights.lost}),
                result.rights_advice,
            )
        if back := restored(rights, previous):
            log.info("rights restored: WeCom sends %s again; the run is no longer degraded", ", ".join(back))
        return rights

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
        drift: Mapping[str, Mapping[str, int]] | None = None,
        plan: str | None = None,
        rights: Rights | None = None,
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
            "drift_total": drift_total(drift),
            "drift": None if drift is None else json.dumps(drift, sort_keys=True),
            "plan": plan,
            "message": message if message is not None else run.message,
            "snapshot_digest": run.snapshot_digest,
            **(rights or Rights(run.withheld)).row_values(),
        }
        conn.execute(text(read_statement("sync_runs/upsert_run.sql", self.dialect)), row)

    def record_failed_run(self, run: RunRecord, message: str, finished_at: datetime | None = None) -> None:
        """Record a run that failed before or during load; its own connection and transaction, so a
        load that died with its connection does not take the record with it.

        A run the deletion guard stopped keeps its ``guard_tripped`` row: that says more.
        """
        existing = self.get_run(run.dag_id, run.run_id)
        if existing and existing["status"] == RunStatus.GUARD_TRIPPED:
            return
        with self.engine.begin() as conn:
            self.record_run(
                conn,
                run,
                status=RunStatus.FAILED,
                observed_at=run.observed_at,
                finished_at=finished_at or datetime.now(UTC),
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


def _differs_from_last(
    run: RunRecord, status: str, digest: str | None, observed_at: datetime, now_observed: datetime
) -> str | None:
    """How the last recorded snapshot rules out reusing it, phrased to follow its name; None if it does not."""
    if status == "partial":
        return "was incomplete"
    if observed_at > now_observed:
        return "is newer than this one"
    if digest != run.snapshot_digest:
        return "differs: other records from WeCom, another transform version or PII policy"
    return None


def _degraded_note(rights: Rights, result: LoadResult) -> str | None:
    if not rights.degraded:
        return None
    return f"degraded: WeCom withholds {', '.join(sorted(rights.lost))} (stored values kept): {result.rights_advice}"


def _counts(plan: TablePlan) -> dict[str, int]:
    return {change: getattr(plan, change) for change in CHANGES if getattr(plan, change)}
