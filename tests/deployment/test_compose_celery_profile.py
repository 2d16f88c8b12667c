"""docker-compose.yaml's celery profile has the shape the CeleryExecutor deployment run tests.

Resolved by Compose's own parser (``docker-compose config``, no Docker engine needed), as
tests/test_container_files.py does for the default profile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def resolved(*args: str, executor: str | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_EXECUTOR"}
    if executor:
        env["AIRFLOW_EXECUTOR"] = executor
    compose = Path(sys.executable).parent / "docker-compose"
    done = subprocess.run(
        [str(compose), "-f", "docker-compose.yaml", *args, "config", "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["services"]


def test_the_default_stack_has_no_broker_and_runs_local_executor() -> None:
    services = resolved()
    assert "redis" not in services and "airflow-worker" not in services
    assert {services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] for name in AIRFLOW_SERVICES} == {"LocalExecutor"}


def test_the_celery_profile_adds_redis_and_two_workers_sharing_staging() -> None:
    services = resolved("--profile", "celery", executor="CeleryExecutor")
    worker = services["airflow-worker"]
    assert worker["command"] == ["celery", "worker"] and worker["deploy"]["replicas"] == 2
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/opt/airflow/wecom-staging" in {v["target"] for v in worker["volumes"] if v["source"] == "wecom-staging"}
    assert worker["environment"]["AIRFLOW__WECOM__STAGING_URI"] == "file:///opt/airflow/wecom-staging"
    for name in (*AIRFLOW_SERVICES, "airflow-worker"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://airflow:")
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
