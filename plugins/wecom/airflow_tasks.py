"""Glue between Airflow's task context and the pure pipeline: engines, run rows, failures."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseHook, Context, ObjectStoragePath

from wecom.hooks.target_db import engine_from_airflow_connection
from wecom.hooks.wecom import WeComHook
from wecom.loader import DirectoryLoader, RunRecord
from wecom.pipeline import run_record
from wecom.staging import StagePath

log = logging.getLogger("wecom.airflow_tasks")


def target_loader(target_conn_id: str) -> DirectoryLoader:
    """A loader on the target database named by an Airflow connection (sqlite or postgres)."""
    return DirectoryLoader(engine_from_airflow_connection(BaseHook.get_connection(target_conn_id)))


def staged(manifest: dict[str, Any], step: str) -> StagePath:
    """A step's folder (``raw``, ``normalized``) inside the run folder the extract task chose."""
    return ObjectStoragePath(manifest["run_uri"]) / step


def context_run_record(manifest: dict[str, Any], context: Context) -> RunRecord:
    dag_run = context["dag_run"]
    return run_record(
        manifest,
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        logical_date=context.get("logical_date"),
        started_at=dag_run.start_date,
    )


def record_failure(wecom_conn_id: str, target_conn_id: str):
    """An ``on_failure_callback`` that marks the run ``failed`` in ``wecom_sync_runs`` with the reason."""

    def callback(context: Context) -> None:
        dag_run = context["dag_run"]
        ti = context["ti"]
        error = context.get("exception")
        try:
            corp_id = WeComHook(wecom_conn_id).settings.corp_id
            loader = target_loader(target_conn_id)
            loader.record_failed_run(
                RunRecord(
                    dag_id=dag_run.dag_id,
                    run_id=dag_run.run_id,
                    corp_id=corp_id,
                    logical_date=context.get("logical_date"),
                    started_at=dag_run.start_date,
                ),
                f"task {ti.task_id} failed: {error}",
            )
        except Exception:  # the callback must never hide the task's own failure
            log.exception("could not record the failed run in wecom_sync_runs")

    return callback
