"""Shared fixtures: an Airflow home inside the project, a throwaway PostgreSQL, target databases.

The Airflow environment is set before anything imports Airflow, so every test
process (and every ``airflow`` subprocess) uses the project's own home,
metadata database, DAGs and plugins folders. Each test run, and each
pytest-xdist worker in it, gets its own home under ``var/test-airflow-home/``,
so parallel workers (or two people's runs) never share one SQLite metadata file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOMES = ROOT / "var" / "test-airflow-home"
# xdist hands every worker the controller's run id (see pytest_configure) and names the worker.
RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
AIRFLOW_HOME = HOMES / f"{RUN_ID}-{WORKER or 'main'}"
MIGRATED = HOMES / f"{RUN_ID}-migrated"
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)

from sqlalchemy import Engine  # noqa: E402

from tests.support.throwaway_postgres import database_name_for, empty_database, throwaway_postgres  # noqa: E402

END_TO_END = (ROOT / "tests" / "integration", ROOT / "tests" / "deployment")


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, give the workers this process's run id, so they share one migrated template."""
    if hasattr(config.option, "testrunuid") and config.option.testrunuid is None:
        config.option.testrunuid = RUN_ID


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it uses (see the markers in pyproject.toml); `make test-unit` deselects them."""
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres_url" in uses or params.get("target_engine") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        if "airflow_metadata" in uses:
            item.add_marker(pytest.mark.airflow)
        if any(item.path.is_relative_to(folder) for folder in END_TO_END):
            item.add_marker(pytest.mark.integration)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or a run without xdist) removes this run's Airflow homes once every worker is done."""
    if WORKER is not None:
        return
    run_id = getattr(session.config.option, "testrunuid", None) or RUN_ID
    for path in HOMES.glob(f"{run_id}-*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the whole session (never skipped: CI must run these); one per xdist worker."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def target_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty target database of each dialect; the PostgreSQL one is a fresh database per test."""
    with empty_database(
        request.param, tmp_path, lambda: request.getfixturevalue("postgres_url"), database_name_for(request.node.nodeid)
    ) as engine:
        yield engine


@pytest.fixture(scope="session")
def airflow_metadata() -> Path:
    """This process's Airflow home, with a metadata database migrated once per test run.

    The first worker to get here migrates a template under a file lock; every worker
    copies it (a few milliseconds) instead of migrating its own (several seconds). The copy
    goes through SQLite's backup API: a test may already hold a pooled connection to this
    worker's database file, which a plain file copy would leave reading a stale, empty schema.
    """
    HOMES.mkdir(parents=True, exist_ok=True)
    with MIGRATED.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (MIGRATED / "airflow.db").is_file():
            MIGRATED.mkdir(exist_ok=True)
            template = {
                "AIRFLOW_HOME": str(MIGRATED),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{MIGRATED}/migrating.db",
            }
            subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                check=True,
                capture_output=True,
                env=os.environ | template,
            )
            (MIGRATED / "migrating.db").rename(MIGRATED / "airflow.db")
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(MIGRATED / "airflow.db")) as template,
        closing(sqlite3.connect(AIRFLOW_HOME / "airflow.db")) as own,
    ):
        template.backup(own)
    return AIRFLOW_HOME
