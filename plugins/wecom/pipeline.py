"""The steps of a full sync on staged files, free of Airflow so they run under plain pytest.

Each step reads what the previous one staged and returns only counts and
paths: the DAG's tasks are one-line wrappers around these functions.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from datetime import datetime
from typing import Any

from wecom.extract import DEPARTMENTS_FILE, USERS_FILE
from wecom.loader import DirectoryLoader, LoadResult, RunRecord
from wecom.quality import check_snapshot
from wecom.staging import StagePath, ensure_dir, iter_table, read_json_lines, read_table, write_table
from wecom.transform import Snapshot, transform

log = logging.getLogger("wecom.pipeline")

TABLE_FIELDS = {f.name: f"wecom_{f.name}" for f in fields(Snapshot)}


def transform_staged(raw_dir: StagePath, out_dir: StagePath, corp_id: str) -> dict[str, int]:
    """Raw JSON lines -> one Parquet file per normalized table; returns row counts by table."""
    snapshot = transform(read_json_lines(raw_dir / DEPARTMENTS_FILE), read_json_lines(raw_dir / USERS_FILE), corp_id)
    ensure_dir(out_dir)
    counts = {
        table: write_table(out_dir / f"{table}.parquet", getattr(snapshot, attr))
        for attr, table in TABLE_FIELDS.items()
    }
    log.info("normalized: %s", ", ".join(f"{table} {n}" for table, n in counts.items()))
    return counts


def read_snapshot(out_dir: StagePath) -> Snapshot:
    return Snapshot(**{attr: read_table(out_dir / f"{table}.parquet") for attr, table in TABLE_FIELDS.items()})


def check_staged(out_dir: StagePath) -> None:
    """Raise ``QualityCheckError`` naming the offending ids; nothing has been loaded yet."""
    check_snapshot(read_snapshot(out_dir))
    log.info("quality checks passed")


def load_staged(loader: DirectoryLoader, out_dir: StagePath, manifest: dict[str, Any], run: RunRecord) -> LoadResult:
    """Merge the normalized tables in one transaction, streaming each table in batches."""
    tables = {table: iter_table(out_dir / f"{table}.parquet") for table in TABLE_FIELDS.values()}
    return loader.load_snapshot(
        tables,
        run=run,
        observed_at=datetime.fromisoformat(manifest["observed_at"]),
        complete=manifest["complete"],
    )


def run_record(
    manifest: dict[str, Any],
    *,
    dag_id: str,
    run_id: str,
    logical_date: datetime | None,
    started_at: datetime | None,
) -> RunRecord:
    """The run-row facts an extraction manifest carries."""
    reasons = manifest.get("incomplete_reasons") or []
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
        message=("incomplete: " + "; ".join(reasons)) if reasons else None,
    )
