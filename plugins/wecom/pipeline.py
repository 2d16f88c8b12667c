"""The steps of a full sync on staged files, free of Airflow so they run under plain pytest.

Each step reads what the previous one staged and returns only counts and
paths: the DAG's tasks are one-line wrappers around these functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

import pandas as pd

from wecom.api.extract import DEPARTMENTS_FILE, USERS_FILE
from wecom.api.scope_walk import EXITS_FILE
from wecom.api.tag_walk import TAGS_FILE
from wecom.directory.attributes import transform_attributes
from wecom.directory.pii import KEEP_ALL, PiiPolicy
from wecom.directory.quality import check_snapshot
from wecom.directory.tags import Unlisted, mark_tags, transform_tags
from wecom.directory.transform import (
    TABLE_DTYPES,
    TRANSFORM_VERSION,
    Snapshot,
    department_leaders_from_members,
    transform_departments,
    transform_users,
    withheld_leader_departments,
)
from wecom.directory.withheld import WITHHELD, WITHHOLDABLE, mark_departments, mark_users
from wecom.scope import SCOPE_KEYS, Scope
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import LoadOptions, LoadResult
from wecom.store.run_records import RunRecord
from wecom.store.stage_path import StagePath, ensure_dir
from wecom.store.staging import (
    TableWriter,
    gc_paused,
    iter_json_lines,
    iter_table,
    read_json,
    read_json_lines,
    read_table,
)

log = logging.getLogger(__name__)

TABLE_FIELDS = {f.name: f"wecom_{f.name}" for f in fields(Snapshot)}
NOTES_FILE = "notes.json"
# What ``check_snapshot`` reads of each table; a check on another column fails loudly with a KeyError.
CHECKED_COLUMNS = {
    "departments": ["department_id", "parent_id"],
    "users": ["userid"],
    "user_departments": ["userid", "department_id"],
    "tags": ["tag_id"],
}


def transform_staged(
    raw_dir: StagePath,
    out_dir: StagePath,
    corp_id: str,
    pii: PiiPolicy = KEEP_ALL,
    chunk_rows: int = 10_000,
    *,
    tops: Collection[int] = (),
) -> dict[str, int]:
    """Raw JSON lines -> one Parquet file per normalized table; returns row counts by table.

    ``tops``: the department scope's top departments (the manifest's ``scope.tops``), where paths start.

    Members, memberships, departments and tags carry a ``withheld`` column (``wecom.directory.withheld``):
    which of their fields WeCom left out, for the load to keep the stored values there. Custom fields
    come from the members' records, tags from ``tags.jsonl`` (restricted to the scope by the extraction).

    Members stream through in chunks of ``chunk_rows`` (the extract stages each
    member once, which is all ``transform_users`` needs of a chunk), so memory
    stays bounded as the company grows (a chunk costs about 25 kB of peak memory
    per member, so 10,000 keep the step under 400 MB); the department tree (at
    most 30,000) is transformed whole.
    """
    raw_departments = read_json_lines(raw_dir / DEPARTMENTS_FILE)
    departments, payload_leaders, closure = transform_departments(raw_departments, corp_id, tops)
    withheld = withheld_leader_departments(raw_departments)
    leaders_unknown: set[int] = set()
    ensure_dir(out_dir)
    writers = {table: TableWriter(out_dir / f"{table}.parquet", _empty(table)) for table in TABLE_FIELDS.values()}
    try:
        writers["wecom_department_leaders"].write(payload_leaders)
        writers["wecom_department_closure"].write(closure)
        unlisted = _write_tags(writers, raw_dir / TAGS_FILE, corp_id)
        unlisted.listed(department_ids=departments["department_id"])
        # The GC only ever rescans live chunks here: the loop makes no reference cycles (gc.collect()
        # finds nothing after a 100k-member transform), and pausing it saves about 1 s per 100k.
        with gc_paused():
            for chunk in iter_json_lines(raw_dir / USERS_FILE, chunk_rows):
                users, memberships, direct_leaders = transform_users(chunk, corp_id, pii)
                users, memberships, unsure = mark_users(chunk, users, memberships, withheld)
                leaders_unknown |= unsure
                writers["wecom_users"].write(users)
                writers["wecom_user_departments"].write(memberships)
                writers["wecom_user_direct_leaders"].write(direct_leaders)
                writers["wecom_department_leaders"].write(department_leaders_from_members(memberships, withheld))
                writers["wecom_user_attributes"].write(transform_attributes(chunk, corp_id))
                unlisted.listed(userids=users["userid"])
        # Written last: whether a department's leaders are known depends on every member's answer.
        writers["wecom_departments"].write(mark_departments(raw_departments, departments, leaders_unknown))
    finally:
        for writer in writers.values():
            writer.close()
    counts = {table: writer.rows for table, writer in writers.items()}
    log.info("normalized: %s", ", ".join(f"{table} {n}" for table, n in counts.items()))
    with (out_dir / NOTES_FILE).open("w", encoding="utf-8") as handle:
        json.dump(unlisted.notes(), handle, ensure_ascii=False)
    for note in unlisted.notes():
        log.warning("%s", note)
    return counts


def _write_tags(writers: dict[str, TableWriter], raw_tags: StagePath, corp_id: str) -> Unlisted:
    """The tag tables; a tag whose members WeCom withheld is marked so the load keeps its stored ones."""
    raw = read_json_lines(raw_tags) if raw_tags.exists() else pd.DataFrame()
    tables = transform_tags(raw, corp_id)
    writers["wecom_tags"].write(mark_tags(raw, tables.tags))
    writers["wecom_tag_users"].write(tables.tag_users)
    writers["wecom_tag_departments"].write(tables.tag_departments)
    return Unlisted(tables)


def _empty(table: str) -> pd.DataFrame:
    dtypes = TABLE_DTYPES[table] | ({WITHHELD: "int64"} if table in WITHHOLDABLE else {})
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in dtypes.items()})


def check_staged(out_dir: StagePath, tops: Collection[int] = ()) -> None:
    """Raise ``QualityCheckError`` naming the offending ids; nothing has been loaded yet.

    Reads only the columns the checks look at (``CHECKED_COLUMNS``): the whole
    snapshot of a million-member company would take gigabytes.
    """
    check_snapshot(
        Snapshot(
            **{
                attr: read_table(out_dir / f"{table}.parquet", CHECKED_COLUMNS.get(attr, []))
                for attr, table in TABLE_FIELDS.items()
            }
        ),
        tops,
    )
    log.info("quality checks passed")


def load_staged(
    loader: DirectoryLoader,
    out_dir: StagePath,
    manifest: dict[str, Any],
    run: RunRecord,
    options: LoadOptions | None = None,
    *,
    raw_dir: StagePath | None = None,
) -> LoadResult:
    """Merge the normalized tables in one transaction, streaming each table in batches; ``raw_dir``
    holds the extraction's scope exits (who left the department scope, not WeCom). The transform's notes
    (tag members the lists lacked) join the run's message."""
    tables = {table: iter_table(out_dir / f"{table}.parquet") for table in TABLE_FIELDS.values()}
    exits_file = None if raw_dir is None else raw_dir / EXITS_FILE
    if (notes_file := out_dir / NOTES_FILE).exists():
        with notes_file.open(encoding="utf-8") as handle:
            run = replace(run, message="; ".join(filter(None, [run.message, *json.load(handle)])) or None)
    return loader.load_snapshot(
        tables,
        run=run,
        observed_at=datetime.fromisoformat(manifest["observed_at"]),
        complete=manifest["complete"],
        tags_listed=manifest.get("tags_listed", False),
        options=options,
        exits=read_json(exits_file) if exits_file is not None and exits_file.exists() else None,
    )


def snapshot_digest(manifest: dict[str, Any], pii: PiiPolicy = KEEP_ALL) -> str | None:
    """What a complete extraction will normalize to, as one hash (None for an incomplete one).

    Built from the staged records' order-free digests, ``TRANSFORM_VERSION`` and the PII policy:
    two extractions with equal digests give the same normalized tables, so the second one need
    not be transformed or loaded (``DirectoryLoader.record_if_unchanged`` decides).
    """
    if not manifest["complete"]:
        return None
    parts = [manifest["content_digest"], TRANSFORM_VERSION, pii.fingerprint()]
    if (scope := manifest_scope(manifest).text()) is not None:
        parts.append(scope)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def run_record(
    manifest: dict[str, Any],
    *,
    dag_id: str,
    run_id: str,
    logical_date: datetime | None,
    started_at: datetime | None,
    snapshot_digest: str | None = None,
) -> RunRecord:
    """The run-row facts an extraction manifest carries."""
    reasons = manifest.get("incomplete_reasons") or []
    notes = (["incomplete: " + "; ".join(reasons)] if reasons else []) + list(manifest.get("tag_notes", []))
    return RunRecord(
        dag_id=dag_id,
        run_id=run_id,
        corp_id=manifest["corp_id"],
        logical_date=logical_date,
        observed_at=datetime.fromisoformat(manifest["observed_at"]),
        started_at=started_at,
        strategy=manifest.get("strategy"),
        strategy_reason=manifest.get("strategy_reason"),
        api_calls_by_endpoint=manifest.get("api_calls", {}),
        throttled=manifest.get("throttled", 0),
        departments_seen=manifest.get("departments"),
        users_seen=manifest.get("users"),
        tags_seen=manifest.get("tags"),
        message="; ".join(notes) or None,
        snapshot_digest=snapshot_digest,
        withheld=manifest.get("withheld", {}),
        scope=manifest_scope(manifest).text(),
    )


def manifest_scope(manifest: dict[str, Any]) -> Scope:
    """The department scope an extraction walked (the whole company for manifests from before scopes)."""
    option = manifest.get("scope") or {}
    return Scope.from_option({key: option[key] for key in SCOPE_KEYS if key in option} or None)


def scope_tops(manifest: dict[str, Any]) -> list[int]:
    """The staged tree's top departments: where paths start, whose parents are outside the scope."""
    return list((manifest.get("scope") or {}).get("tops", ()))
