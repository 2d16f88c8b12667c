"""Load a normalized snapshot into the directory tables and record the run, all or nothing.

Every write is ordered by observation time: a snapshot older than one already
loaded changes nothing (status ``stale``), and rows a newer callback wrote are
left alone. ``record_if_unchanged`` lets a run whose snapshot repeats the last
one skip transform and load (status ``unchanged``). The merge itself is
``wecom.store.merge``; the run rows are ``wecom.store.run_records``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text

from wecom.errors import MassDeletionError
from wecom.runs import RunStatus
from wecom.scope import CurrentEntities
from wecom.store.plan import DRIFT_TABLES, LoadOptions, LoadResult
from wecom.store.run_records import RunRecord, RunRecords
from wecom.store.schema import ensure_schema
from wecom.store.sql import db_time, parse_db_time, read_named_statements

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)


class DirectoryLoader:
    """Writes snapshots and run rows to one target database (sqlite or postgresql)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.runs = RunRecords(engine)

    def ensure_schema(self) -> bool:
        """Create every table, index and column that is missing (``wecom.store.schema``); safe to run
        before every sync, and one query when the database is already current. True if DDL ran."""
        return ensure_schema(self.engine)

    def current_entities(self, corp_id: str) -> CurrentEntities:
        """The departments and members the tables hold as current, members with their departments."""
        sql = read_named_statements("scope/current.sql", self.dialect)
        members: dict[str, list[int]] = {}
        with self.engine.connect() as conn:
            departments = frozenset(int(d) for (d,) in conn.execute(text(sql["departments"]), {"corp_id": corp_id}))
            for userid, department in conn.execute(text(sql["members"]), {"corp_id": corp_id}):
                held = members.setdefault(userid, [])
                if department is not None:
                    held.append(int(department))
        return CurrentEntities(departments, {userid: tuple(held) for userid, held in members.items()})

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
            last = self.runs.last_snapshot(conn, _run_params(run))
            reason = self._changed_reason(conn, run, run.observed_at, last)
            if reason:
                log.info("transforming and loading: %s", reason)
                return None
            now = datetime.now(UTC)
            result = LoadResult(
                status=RunStatus.UNCHANGED,
                plans={},
                rows_written=0,
                message=(
                    "WeCom answered exactly what the last snapshot held and nothing else changed the tables "
                    'since: nothing transformed or loaded (trigger with conf {"force": true} for a full compare)'
                ),
                drift={name: {} for name in DRIFT_TABLES},
            )
            self.runs.record_result(conn, run, result, run.observed_at, now, last=last)
        log.info("load unchanged: 0 rows written; %s", result.message)
        return result

    def _changed_reason(
        self, conn: Connection, run: RunRecord, observed_at: datetime, last: Mapping[str, Any] | None
    ) -> str | None:
        """Why this snapshot may differ from what the tables hold (``last``: the newest snapshot run's row),
        or None when it cannot."""
        if run.snapshot_digest is None:
            return "the snapshot is incomplete"
        params = _run_params(run)
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
        tags = live.tags if run.tags_seen is None else run.tags_seen  # a refused tag list says nothing
        if (live.departments, live.users, live.tags) != (run.departments_seen, run.users_seen, tags):
            return (
                f"the tables hold {live.departments} departments, {live.users} members and {live.tags} tags where "
                f"WeCom lists {run.departments_seen}, {run.users_seen} and {tags} (changed outside this DAG?)"
            )
        return None

    def load_snapshot(
        self,
        tables: Mapping[str, Iterable[pd.DataFrame | pa.RecordBatch]],
        *,
        run: RunRecord,
        observed_at: datetime,
        complete: bool,
        tags_listed: bool = False,
        options: LoadOptions | None = None,
        exits: Mapping[str, Sequence[int | str]] | None = None,
    ) -> LoadResult:
        """Merge every table of one snapshot and record the run, all or nothing.

        ``exits``: the departments and users a scoped snapshot found outside the scope (still in
        WeCom); they are marked ``out_of_scope`` instead of deleted. A run whose scope differs from
        the last snapshot's says so in its message.
        ``tags_listed``: WeCom answered tag/list, so a complete snapshot may delete the tags it lacks;
        tag events before the snapshot are superseded only when it also read every tag's members.

        Raises ``MassDeletionError`` (after recording the run as ``guard_tripped``,
        with the directory untouched) when the snapshot would delete too much.
        """
        # Imported here: the merge brings pandas and Arrow, which the other tasks that use a loader
        # (schema, freshness, the unchanged check, run rows) do not need.
        from wecom.store.merge import merge_snapshot  # noqa: PLC0415

        options = options or LoadOptions()
        now = datetime.now(UTC)
        params = {
            "corp_id": run.corp_id,
            "observed_at": db_time(observed_at, self.dialect),
            "now": db_time(now, self.dialect),
            "complete": complete,
            "tags_complete": complete and tags_listed,
            "tags_read": complete and tags_listed and "tags" not in run.withheld,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "sample_size": options.sample_size,
        }
        with self.engine.begin() as conn:
            last = self.runs.last_snapshot(conn, params)
            previous = None if last is None else parse_db_time(last["observed_at"])
            if previous is not None and previous > observed_at:
                result = LoadResult(
                    status=RunStatus.STALE,
                    plans={},
                    rows_written=0,
                    message=(
                        f"a newer snapshot (observed {previous.isoformat()}) is already loaded; this one "
                        f"(observed {observed_at.isoformat()}) changes nothing"
                    ),
                )
            else:
                result = merge_snapshot(conn, tables, params, complete, options, first=previous is None, exits=exits)
            if last is not None and last.get("scope") != run.scope:
                result.message += (
                    f"; the scope changed from {_scope_text(last.get('scope'))} to {_scope_text(run.scope)}"
                )
            self.runs.record_result(conn, run, result, observed_at, now, last=last)
        log.info("load %s: %s rows written; %s", result.status, result.rows_written, result.message)
        if result.status == RunStatus.GUARD_TRIPPED:
            raise MassDeletionError(result.message)
        return result


def _scope_text(scope: str | None) -> str:
    return "the whole company" if scope is None else scope


def _run_params(run: RunRecord) -> dict[str, str]:
    """What the run-row queries bind to name a corp and exclude this run's own row."""
    return {"corp_id": run.corp_id, "dag_id": run.dag_id, "run_id": run.run_id}


def _differs_from_last(
    run: RunRecord, status: str, digest: str | None, observed_at: datetime, now_observed: datetime
) -> str | None:
    """How the last recorded snapshot rules out reusing it, phrased to follow its name; None if it does not."""
    if status == RunStatus.PARTIAL:
        return "was incomplete"
    if observed_at > now_observed:
        return "is newer than this one"
    if digest != run.snapshot_digest:
        return "differs: other records from WeCom, another transform version or PII policy"
    return None
