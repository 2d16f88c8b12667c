"""``wecom_sync_runs``: one row per run (a full sync or a callback apply), what it saw and what it did.

A rerun rewrites its own row, never adds one. The newest recorded snapshot is
what freshness, the unchanged check and the rights judgement compare with.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from wecom.directory.rights import Rights, advice, describe, judge, newly_lost, records_seen, restored
from wecom.runs import CHANGES, SNAPSHOT_STATUSES, Change, RunStatus
from wecom.store.plan import LoadResult, TablePlan, drift_total
from wecom.store.sql import db_time, parse_db_time, read_statement

log = logging.getLogger(__name__)

# Run-row count prefix -> the tables it sums and the changes it counts (<prefix>_<change> columns).
RUN_COUNTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "departments": (("wecom_departments",), CHANGES),
    "users": (("wecom_users",), CHANGES),
    "memberships": (("wecom_user_departments",), ("inserted", "updated", "deleted")),
    "tags": (("wecom_tags",), tuple(c for c in CHANGES if c != Change.LEFT_SCOPE)),
    "tag_members": (("wecom_tag_users", "wecom_tag_departments"), ("inserted", "deleted")),
}
RUN_COUNT_COLUMNS = tuple(f"{prefix}_{what}" for prefix, (_, changes) in RUN_COUNTS.items() for what in changes)


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
    tags_seen: int | None = None
    message: str | None = None
    snapshot_digest: str | None = None
    withheld: dict[str, int] = field(default_factory=dict)
    # The department scope the run synced, as JSON (``Scope.text``); None for the whole company.
    scope: str | None = None


class RunRecords:
    """Reads and writes the run rows of one target database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def record(
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
        """Insert or rewrite the run's row (reruns overwrite, never duplicate)."""
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
            "tags_seen": run.tags_seen,
            "drift_total": drift_total(drift),
            "drift": None if drift is None else json.dumps(drift, sort_keys=True),
            "plan": plan,
            "message": message if message is not None else run.message,
            "snapshot_digest": run.snapshot_digest,
            "scope": run.scope,
            **(rights or Rights(run.withheld)).row_values(),
        }
        conn.execute(text(read_statement("sync_runs/upsert_run.sql", self.dialect)), row)

    def record_result(
        self,
        conn: Connection,
        run: RunRecord,
        result: LoadResult,
        observed_at: datetime,
        finished: datetime,
        *,
        last: Mapping[str, Any] | None,
    ) -> None:
        """The row of a full sync that loaded, repeated or refused a snapshot, with its plan and rights;
        ``last`` is the newest earlier snapshot run's row (``last_snapshot``), which the caller has read."""
        counts = {
            f"{prefix}_{what}": sum(getattr(result.plans.get(table, TablePlan()), what) for table in tables)
            for prefix, (tables, changes) in RUN_COUNTS.items()
            for what in changes
        }
        rights = self._judge_rights(run, result, Rights.from_row(last))
        message = "; ".join(m for m in (result.message, run.message, _degraded_note(rights, result)) if m)
        self.record(
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

    def record_failed(self, run: RunRecord, message: str, finished_at: datetime | None = None) -> None:
        """Record a run that failed before or during load; its own connection and transaction, so a
        load that died with its connection does not take the record with it.

        A run the deletion guard stopped keeps its ``guard_tripped`` row: that says more.
        """
        existing = self.get(run.dag_id, run.run_id)
        if existing and existing["status"] == RunStatus.GUARD_TRIPPED:
            return
        with self.engine.begin() as conn:
            self.record(
                conn,
                run,
                status=RunStatus.FAILED,
                observed_at=run.observed_at,
                finished_at=finished_at or datetime.now(UTC),
                message=message,
            )

    def get(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            sql = text(read_statement("sync_runs/get_run.sql", self.dialect))
            row = conn.execute(sql, {"dag_id": dag_id, "run_id": run_id}).mappings().one_or_none()
        return dict(row) if row else None

    def latest_snapshot(self, corp_id: str, exclude: tuple[str, str] = ("", "")) -> datetime | None:
        """When the newest loaded full snapshot of a corp was observed (other than run ``exclude``)."""
        with self.engine.connect() as conn:
            last = self.last_snapshot(conn, {"corp_id": corp_id, "dag_id": exclude[0], "run_id": exclude[1]})
        return None if last is None else parse_db_time(last["observed_at"])

    def last_snapshot(self, conn: Connection, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The newest snapshot run's row (``corp_id``, other than ``dag_id``/``run_id``), or None."""
        sql = read_statement("sync_runs/latest_full_snapshot.sql", self.dialect)
        return conn.execute(text(sql), params).mappings().one_or_none()

    def _judge_rights(self, run: RunRecord, result: LoadResult, previous: Rights | None) -> Rights:
        """What this snapshot could not see against the previous one: a run that loaded (or repeated) a
        snapshot is degraded while it lacks a field group an earlier one could read; other runs only
        record what was withheld. Logs the change in the admin console's terms."""
        if result.status not in SNAPSHOT_STATUSES:
            return Rights(run.withheld)
        rights = judge(run.withheld, records_seen(vars(run)), previous)
        result.newly_degraded = newly_lost(rights, previous)
        result.degraded = sorted(rights.lost)
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


def _degraded_note(rights: Rights, result: LoadResult) -> str | None:
    if not rights.degraded:
        return None
    return f"degraded: WeCom withholds {', '.join(sorted(rights.lost))} (stored values kept): {result.rights_advice}"
