"""Fixtures for DAG runs: a simulator with a generated company and the environment of one run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.airflow_runner import target_connection, wecom_connection
from tests.support.directory import CORP, SECRET
from wecom_simulator.org import generate_org
from wecom_simulator.testing import running_simulator


@pytest.fixture
def sim() -> Iterator:
    with running_simulator(generate_org(seed=7, members=120, departments=25), corp_id=CORP, secret=SECRET) as sim:
        yield sim


@pytest.fixture
def env(sim, target_engine: Engine, tmp_path: Path, airflow_metadata: Path) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_WECOM_DEFAULT": wecom_connection(sim.base_url, CORP, SECRET, max_retries=1),
        "AIRFLOW_CONN_WECOM_TARGET_DB": target_connection(target_engine.url.render_as_string(hide_password=False)),
        "AIRFLOW__WECOM__STAGING_URI": f"file://{tmp_path}/staging",
        "AIRFLOW_VAR_WECOM_COMPANIES": json.dumps([{"name": "default", "retries": 0}]),
    }
