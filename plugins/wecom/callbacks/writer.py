"""What the writers share: one apply's write transaction, the event outcomes it decides, the table
counts, staging and SCD-2 history.

Every write is ordered by observation time (``observed_at``, the event's CreateTime): a row
observed later (a newer snapshot or event) is left alone. History versions begin at the
event's CreateTime, so a late event slots in between the versions already written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from wecom.callbacks.fold import Event, Fetched, Version
from wecom.scope import WHOLE_COMPANY, Scope
from wecom.store.sql import db_time, read_named_statements, written_table

SQL_FILES = {
    "users": "deltas/users.sql",
    "departments": "deltas/departments.sql",
    "rename": "deltas/rename_user.sql",
    "history": "deltas/history.sql",
    "tags": "deltas/tags.sql",
}
CREATE_TIME_RESOLUTION = timedelta(seconds=1)
_HISTORY_KEYS = {
    "user": ("userid",),
    "membership": ("userid", "department_id"),
    "department": ("department_id",),
    "tag": ("tag_id",),
    "tag_user": ("tag_id", "userid"),
    "tag_department": ("tag_id", "department_id"),
    "attribute": ("userid", "attr_name"),
}


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    revived: int = 0
    left_scope: int = 0


@dataclass
class Outcome:
    """What an apply decided for each ready event; ``failures`` and ``out_of_scope`` map a one-line
    reason to its events."""

    applied: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    out_of_scope: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def fail(self, reason: str, events: Iterable[Event]) -> None:
        self.failures[reason] += [e.event_id for e in events if e.ready]

    def set_aside(self, reason: str, events: Iterable[Event]) -> None:
        """About an entity outside the department scope: recorded as ``out_of_scope``, not applied."""
        self.out_of_scope[reason] += [e.event_id for e in events if e.ready]

    def settle(self, status: str, events: Iterable[Event]) -> None:
        getattr(self, status).extend(e.event_id for e in events if e.ready)


@dataclass
class WriteStep:
    """One apply's write transaction and what it decided so far."""

    conn: Connection
    corp_id: str
    run_id: str
    now: datetime
    fetched: Mapping[tuple[str, str], Fetched]
    # The company's department scope, and WeCom's department tree (id -> parent) when the apply had to
    # place departments the tables do not hold.
    scope: Scope = WHOLE_COMPANY
    tree: Mapping[int, int] = field(default_factory=dict)
    outcome: Outcome = field(default_factory=Outcome)
    users: Counts = field(default_factory=Counts)
    departments: Counts = field(default_factory=Counts)
    memberships: Counts = field(default_factory=Counts)
    tags: Counts = field(default_factory=Counts)
    # Rows each statement of ``run`` wrote, per table and change: the counts of the tables without their own.
    written: defaultdict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    # History statements by version level, then statement name: executed in bulk, level by level.
    history: dict[int, dict[str, list[dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    def sql(self, family: str) -> dict[str, str]:
        return read_named_statements(SQL_FILES[family], self.dialect)

    def t(self, value: datetime | None) -> Any:
        return db_time(value, self.dialect)

    def run(self, family: str, *statements: str, **params: Any) -> None:
        """Execute named statements of one file with ``:corp_id`` and ``:now`` bound, counting what they write."""
        sql = self.sql(family)
        for statement in statements:
            result = self.conn.execute(
                text(sql[statement]), {"corp_id": self.corp_id, "now": self.t(self.now), **params}
            )
            if (target := written_table(sql[statement])) and result.rowcount > 0:
                counts = self.written[target[0]]
                setattr(counts, target[1], getattr(counts, target[1]) + result.rowcount)

    # --- history ---------------------------------------------------------------------------------

    def open(self, kind: str, row: Mapping[str, Any], t: Any, level: int = 0) -> None:
        """Close the version covering ``t`` and make ``row`` the version from ``t`` on."""
        key = {k: row[k] for k in _HISTORY_KEYS[kind]} | {"corp_id": self.corp_id, "valid_from": t}
        self.history[level][f"close_{kind}"].append(key | {"ended_by": None})
        self.history[level][f"upsert_{kind}"].append(dict(row) | key | {"run_id": self.run_id})

    def refresh(self, kind: str, row: Mapping[str, Any], t: Any, level: int = 0) -> None:
        """Give a version that already begins at ``t`` the content of ``row`` (a replay recomputed it)."""
        key = {k: row[k] for k in _HISTORY_KEYS[kind]} | {"corp_id": self.corp_id, "valid_from": t}
        self.history[level][f"refresh_{kind}"].append(dict(row) | key | {"run_id": self.run_id})

    def close(self, kind: str, key: Mapping[str, Any], t: Any, level: int = 0, *, ended_by: str = "deleted") -> None:
        """End the version covering ``t`` (one that began exactly at ``t`` never held, and goes): the entity was
        ``deleted`` then, or left the department scope (``out_of_scope``)."""
        params = dict(key) | {"corp_id": self.corp_id, "valid_from": t}
        self.history[level][f"close_{kind}"].append(params | {"ended_by": ended_by})
        self.history[level][f"drop_{kind}_version"].append(params)

    def write_history(self) -> None:
        """One level holds at most one change per entity, so its closes, drops and upserts can each go
        in bulk; levels (a member's successive versions) go in order."""
        sql = self.sql("history")
        for level in sorted(self.history):
            statements = self.history[level]
            for action in ("close_", "drop_", "upsert_", "refresh_"):
                for name, params in statements.items():
                    if name.startswith(action):
                        self.conn.execute(text(sql[name]), params)
        self.history.clear()

    # --- staging ---------------------------------------------------------------------------------

    def recreate_stages(self, family: str, prefixes: Sequence[str]) -> None:
        """Drop, create and index the ``<prefix>stage`` tables of one statement file."""
        sql = self.sql(family)
        for prefix in prefixes:
            for step_name in ("drop", "create", "index"):
                self.conn.execute(text(sql[f"{step_name}_{prefix}stage"]))

    def stage(self, table: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            columns = list(rows[0])
            placeholders = ", ".join(":" + c for c in columns)
            self.conn.execute(text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"), rows)


def before(create_time: datetime, observed_at: datetime) -> bool:
    """Whether an event surely happened before an observation: CreateTime is whole seconds, rounded down."""
    return create_time + CREATE_TIME_RESOLUTION <= observed_at


def not_before(versions: list[Version], observed_at: datetime | None) -> list[Version]:
    """Versions moved up to the stored row's observation time when their second overlaps it, so the
    write is not refused as older; of several landing on one time the last wins."""
    if observed_at is None:
        return versions
    moved: dict[datetime, dict[str, Any] | None] = {}
    for stamp, state in versions:
        at = stamp if before(stamp, observed_at) else max(stamp, observed_at)
        moved.pop(at, None)
        moved[at] = state
    return list(moved.items())


def plain_rows(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Plain Python values (None for NA), ready to bind.

    Column by column (``tolist`` gives Python scalars), with missing values replaced only in the
    columns that have some: three times faster than ``where(notna)`` then ``to_dict("records")``,
    which boxes every cell twice."""
    if frame is None or frame.empty:
        return []
    columns = []
    for name in frame.columns:
        series = frame[name]
        values = series.astype(object).tolist()
        if series.hasnans:
            values = [None if missing else value for value, missing in zip(values, series.isna().tolist(), strict=True)]
        columns.append(values)
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def records(frame: pd.DataFrame | None, key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: {k: v for k, v in row.items() if k != "corp_id"} for row in plain_rows(frame)}
