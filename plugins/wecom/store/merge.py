"""Merge one normalized snapshot into the directory tables, inside the caller's transaction.

Each table is staged into a temporary table with the database's bulk path
(COPY on PostgreSQL, ``executemany`` on SQLite), completed where WeCom withheld
fields (``wecom.store.withheld_values``), then diffed by the statements in
``include/sql/merge/`` into a plan per table: rows whose ``row_hash`` is
unchanged are not rewritten, rows missing from a complete snapshot are
soft-deleted, rows that come back are revived. Rows a scoped snapshot found outside
the company's department scope (``exits``) leave it instead: soft-deleted and marked
``out_of_scope``. The plan is checked against the mass-deletion guard before anything is written.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, text

from wecom.runs import CHANGES, RunStatus
from wecom.store.plan import (
    DRIFT_TABLES,
    LoadOptions,
    LoadResult,
    TablePlan,
    drift_total,
    guard_violation,
    plan_counts,
)
from wecom.store.sql import read_named_statements, read_statement
from wecom.store.withheld_values import WithheldValues

log = logging.getLogger(__name__)

SCOPE_EXITS = "merge/scope_exits.sql"

# Merge order matters: link tables look at the staged entities they belong to.
MERGE_FILES: dict[str, str] = {
    "wecom_departments": "merge/departments.sql",
    "wecom_users": "merge/users.sql",
    "wecom_user_departments": "merge/user_departments.sql",
    "wecom_department_leaders": "merge/department_leaders.sql",
    "wecom_user_direct_leaders": "merge/user_direct_leaders.sql",
    "wecom_department_closure": "merge/department_closure.sql",
    "wecom_tags": "merge/tags.sql",
    "wecom_tag_users": "merge/tag_users.sql",
    "wecom_tag_departments": "merge/tag_departments.sql",
    "wecom_user_attributes": "merge/user_attributes.sql",
}


def merge_snapshot(
    conn: Connection,
    tables: Mapping[str, Iterable[pd.DataFrame | pa.RecordBatch]],
    params: dict,
    complete: bool,
    options: LoadOptions,
    *,
    first: bool,
    exits: Mapping[str, Sequence[int | str]] | None = None,
) -> LoadResult:
    """Stage, plan, guard and (unless a dry run or the guard stops it) apply one snapshot inside ``conn``'s
    transaction; ``params`` binds ``corp_id``, ``observed_at``, ``now``, ``complete`` and ``run_id``.

    ``first``: no snapshot was loaded before, so nothing counts as drift. ``exits``: the ``departments``
    and ``users`` (ids) that left the department scope but not WeCom.
    """
    dialect = conn.dialect.name
    statements = {name: read_named_statements(path, dialect) for name, path in MERGE_FILES.items()}
    shared = {name: read_named_statements("merge/common.sql", dialect, name) for name in MERGE_FILES}
    scope_exits = read_named_statements(SCOPE_EXITS, dialect)
    for kind in ("departments", "users"):
        conn.execute(text(scope_exits[f"drop_{kind}"]))
        conn.execute(text(scope_exits[f"create_{kind}"]))
        ids = (exits or {}).get(kind, ())
        if ids:
            conn.execute(text(scope_exits[f"insert_{kind.removesuffix('s')}"]), [{"id": i} for i in ids])
    withheld = WithheldValues(conn, dialect, params["corp_id"])
    for name, sql in statements.items():
        conn.execute(text(shared[name]["drop_stage"]))
        conn.execute(text(shared[name]["drop_diff"]))
        conn.execute(text(sql["create_stage"]))
        conn.execute(text(sql["index_stage"]))
        batches = withheld.complete(name, tables.get(name, ()))
        staged = sum(_stage(conn, f"stage_{name}", frame) for frame in batches)
        conn.execute(text(shared[name]["analyze_stage"]))
        log.info("staged %s rows for %s", staged, name)
    withheld.log_summary()
    for sql in statements.values():
        conn.execute(text(sql["drop_newer"]), params)
    plans = {name: _plan(conn, sql, shared[name], params) for name, sql in statements.items()}
    for name, plan in plans.items():
        log.info(
            "%s: %s inserted, %s updated, %s revived, %s deleted, %s left the scope",
            name,
            plan.inserted,
            plan.updated,
            plan.revived,
            plan.deleted,
            plan.left_scope,
        )
    drift = None if first else {name: plan_counts(plans[name]) for name in DRIFT_TABLES}
    violation = guard_violation(plans, options)
    if options.dry_run:
        status, written = RunStatus.DRY_RUN, 0
        message = "dry run: the plan was computed, no directory table changed"
        if violation:
            message += "; a real run would stop here: " + violation
    elif violation:
        status, written, message = RunStatus.GUARD_TRIPPED, 0, violation
    else:
        written = _apply(conn, statements, params)
        superseded = conn.execute(
            text(read_statement("callback_events/supersede_before_snapshot.sql", dialect)), params
        ).rowcount
        status = RunStatus.SUCCESS if complete else RunStatus.PARTIAL
        message = "complete snapshot" if complete else "incomplete snapshot: nothing was deleted"
        if superseded:
            message += f"; {superseded} older callback events superseded"
    if drift is not None:
        log.info("drift from the callback-maintained state: %s changes %s", drift_total(drift), json.dumps(drift))
    for name in MERGE_FILES:
        conn.execute(text(shared[name]["drop_stage"]))
        conn.execute(text(shared[name]["drop_diff"]))
    for kind in ("departments", "users"):
        conn.execute(text(scope_exits[f"drop_{kind}"]))
    return LoadResult(status=status, plans=plans, rows_written=written, message=message, drift=drift)


def _plan(conn: Connection, sql: Mapping[str, str], shared: Mapping[str, str], params: dict) -> TablePlan:
    conn.execute(text(sql["create_diff"]), params)
    plan = TablePlan(**{row.change: row.n for row in conn.execute(text(shared["plan"]))})
    if "current" in sql:
        plan.current = conn.execute(text(sql["current"]), params).scalar_one()
    if "guarded" in sql:
        plan.guarded = conn.execute(text(sql["guarded"]), params).scalar_one()
    for change in CHANGES:
        if getattr(plan, change):
            sample = conn.execute(text(shared["sample"]), params | {"change": change}).scalars()
            plan.samples[change] = list(sample)
    return plan


def _apply(conn: Connection, statements: Mapping[str, Mapping[str, str]], params: dict) -> int:
    """History first (it reads the diff against the old state), then the current tables."""
    written = 0
    for sql in statements.values():
        for step in ("history_close", "history_open", "upsert", "delete"):
            if step in sql:
                written += conn.execute(text(sql[step]), params).rowcount
    return written


def _stage(conn: Connection, table: str, chunk: pd.DataFrame | pa.RecordBatch) -> int:
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
        if conn.dialect.name == "postgresql":
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
