"""A run that fails while the target database is unreachable still ends up recorded as failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.airflow_runner import run_dag, target_connection
from tests.support.directory import DAG_ID

pytestmark = pytest.mark.airflow


@pytest.mark.parametrize("target_engine", ["sqlite"], indirect=True)
def test_a_run_the_database_could_not_record_is_recorded_by_the_next_run(env, tmp_path: Path) -> None:
    later = tmp_path / "comes-back-later"
    env["AIRFLOW_CONN_WECOM_TARGET_DB"] = target_connection(f"sqlite:///{later / 'target.db'}")
    first = run_dag(DAG_ID, env, conf={"force": True}, logical_date="2026-11-01T00:00:00+00:00")
    assert "unreachable" in first.stdout + first.stderr

    later.mkdir()
    second = run_dag(DAG_ID, env, conf={"force": True}, logical_date="2026-11-02T00:00:00+00:00")
    output = second.stdout + second.stderr
    with create_engine(f"sqlite:///{later / 'target.db'}").connect() as conn:
        runs = conn.execute(text("SELECT run_id, status, message FROM wecom_sync_runs ORDER BY logical_date")).all()
    assert [status for _, status, _ in runs] == ["failed", "success"], output[-3000:]
    assert "ensure_schema" in runs[0][2]
