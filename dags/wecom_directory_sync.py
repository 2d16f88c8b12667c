"""
### WeCom directory sync

Keeps every department and member of one WeCom company in the target database.

`ensure_schema` → `extract` → `transform` → `quality_checks` → `load` → `summarize`

* **extract** walks the WeCom API (strategy from the `wecom_default` connection, `auto` by default)
  and stages the raw answers; XCom carries only paths and counts.
* **transform** normalizes them with pandas into one Parquet file per table.
* **quality_checks** stops the run, loading nothing, on duplicate keys, unknown parents,
  members in unknown departments or cycles.
* **load** merges everything in one transaction into the `wecom_target_db` connection:
  unchanged rows are not rewritten, members and departments missing from a *complete*
  snapshot are soft-deleted, and the run is recorded in `wecom_sync_runs`
  (`success`, `partial` when some fetch failed, `stale` when a newer snapshot was already loaded).

Schedule: `@daily`, or the cron/preset in the environment variable `WECOM_SYNC_SCHEDULE`;
retries (exponential backoff from 1 minute): 3, or `WECOM_SYNC_RETRIES`.
Every task is safe to clear and rerun.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Context, dag, task
from airflow.sdk.exceptions import AirflowFailException

from wecom.airflow_tasks import context_run_record, record_failure, staged, target_loader
from wecom.errors import QualityCheckError
from wecom.operators.extract import WeComExtractOperator
from wecom.pipeline import check_staged, load_staged, transform_staged

WECOM_CONN_ID = "wecom_default"
TARGET_CONN_ID = "wecom_target_db"
log = logging.getLogger(__name__)


@task
def ensure_schema() -> None:
    """Create missing tables first, so an unreachable database fails before any WeCom call."""
    target_loader(TARGET_CONN_ID).ensure_schema()


@task
def transform(manifest: dict[str, Any]) -> dict[str, int]:
    return transform_staged(staged(manifest, "raw"), staged(manifest, "normalized"), manifest["corp_id"])


@task
def quality_checks(manifest: dict[str, Any], counts: dict[str, int]) -> None:
    """Bad data does not get better on retry: fail at once, naming the offending ids."""
    try:
        check_staged(staged(manifest, "normalized"))
    except QualityCheckError as error:
        raise AirflowFailException(str(error)) from None


@task
def load(manifest: dict[str, Any], **context: Context) -> dict[str, Any]:
    loader = target_loader(TARGET_CONN_ID)
    result = load_staged(loader, staged(manifest, "normalized"), manifest, context_run_record(manifest, context))
    return result.as_dict()


@task
def summarize(result: dict[str, Any], **context: Context) -> dict[str, Any]:
    """Log the run row as the database holds it: what the next engineer will query."""
    dag_run = context["dag_run"]
    row = target_loader(TARGET_CONN_ID).get_run(dag_run.dag_id, dag_run.run_id) or {}
    log.info("run summary:\n%s", "\n".join(f"{key:>24}: {value}" for key, value in row.items()))
    return {"status": result["status"], "rows_written": result["rows_written"]}


@dag(
    dag_id="wecom_directory_sync",
    schedule=os.environ.get("WECOM_SYNC_SCHEDULE", "@daily"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["wecom", "directory"],
    default_args={
        "retries": int(os.environ.get("WECOM_SYNC_RETRIES", "3")),
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": record_failure(WECOM_CONN_ID, TARGET_CONN_ID),
    },
)
def wecom_directory_sync() -> None:
    manifest = WeComExtractOperator(task_id="extract", wecom_conn_id=WECOM_CONN_ID).output
    counts = transform(manifest)
    checked = quality_checks(manifest, counts)
    result = load(manifest)
    ensure_schema() >> manifest
    checked >> result
    summarize(result)


wecom_directory_sync()
