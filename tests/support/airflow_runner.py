"""Run a DAG through Airflow's own test runner (``airflow dags test``) in a subprocess.

A subprocess gives every run a clean process with the connections of that
test only (passed as ``AIRFLOW_CONN_*`` variables), as a scheduler would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import make_url


def wecom_connection(base_url: str, corp_id: str, secret: str, **extra: Any) -> str:
    return json.dumps({"conn_type": "wecom", "host": base_url, "login": corp_id, "password": secret, "extra": extra})


def target_connection(sqlalchemy_url: str) -> str:
    """An Airflow connection (JSON) for a SQLAlchemy URL of sqlite or postgresql."""
    url = make_url(sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": url.database})
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port,
            "login": url.username,
            "password": url.password or "",
            "schema": url.database,
        }
    )


def run_dag(
    dag_id: str,
    env: dict[str, str],
    conf: dict[str, Any] | None = None,
    logical_date: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``airflow dags test DAG_ID [LOGICAL_DATE]`` with ``env`` added; returns the finished process (not checked)."""
    cmd = [sys.executable, "-m", "airflow", "dags", "test", dag_id]
    if logical_date is not None:
        cmd.append(logical_date)
    if conf is not None:
        cmd += ["--conf", json.dumps(conf)]
    return subprocess.run(cmd, env=os.environ | env, capture_output=True, text=True, timeout=timeout, check=False)


def task_tries(dag_id: str, task_id: str) -> tuple[int, str]:
    """``(try_number, state)`` of ``task_id`` in the newest run of ``dag_id``, from the metadata database
    that ``run_dag`` shares with this test process (``$AIRFLOW_HOME/airflow.db``)."""
    with closing(sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db")) as db:
        row = db.execute(
            "SELECT ti.try_number, ti.state FROM task_instance ti JOIN dag_run dr"
            " ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id"
            " WHERE ti.dag_id = ? AND ti.task_id = ? ORDER BY dr.id DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
    assert row is not None, f"{dag_id}.{task_id} never ran"
    return row
