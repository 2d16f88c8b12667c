"""Run a DAG through Airflow's own test runner (``airflow dags test``) in a subprocess.

A subprocess gives every run a clean process with the connections of that
test only (passed as ``AIRFLOW_CONN_*`` variables), as a scheduler would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
