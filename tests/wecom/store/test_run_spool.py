"""Failed runs kept while the target database is down, and recorded once it is back (SQLite, no Airflow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from wecom.store.loader import DirectoryLoader
from wecom.store.run_records import RunRecord
from wecom.store.run_spool import RunSpool

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def run(run_id: str) -> RunRecord:
    return RunRecord(dag_id="wecom_directory_sync", run_id=run_id, corp_id="wwcorp", started_at=T0, logical_date=T0)


def test_kept_runs_are_recorded_as_failed_once_the_database_answers(tmp_path: Path) -> None:
    spool = RunSpool(tmp_path / "spool")
    spool.keep(run("scheduled__1"), "task load failed: server closed the connection", T0 + timedelta(minutes=5))
    spool.keep(run("manual/2 with:odd chars"), "task ensure_schema failed: could not connect", T0)

    down = DirectoryLoader(create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'target.db'}"))
    with pytest.raises(OperationalError):
        spool.replay(down)
    assert len(list((tmp_path / "spool").iterdir())) == 2, "nothing is forgotten while the database is down"

    loader = DirectoryLoader(create_engine(f"sqlite:///{tmp_path / 'target.db'}"))
    loader.ensure_schema()
    assert spool.replay(loader) == 2
    row = loader.runs.get("wecom_directory_sync", "scheduled__1")
    assert row["status"] == "failed" and "server closed the connection" in row["message"]
    assert loader.runs.get("wecom_directory_sync", "manual/2 with:odd chars")["status"] == "failed"
    assert list((tmp_path / "spool").iterdir()) == []
    assert spool.replay(loader) == 0


def test_a_run_that_ended_later_is_not_overwritten(tmp_path: Path) -> None:
    loader = DirectoryLoader(create_engine(f"sqlite:///{tmp_path / 'target.db'}"))
    loader.ensure_schema()
    spool = RunSpool(tmp_path / "spool")
    spool.keep(run("r1"), "task load failed", T0)
    with loader.engine.begin() as conn:
        loader.runs.record(conn, run("r1"), status="success", observed_at=T0, finished_at=T0 + timedelta(hours=1))
    assert spool.replay(loader) == 0
    assert loader.runs.get("wecom_directory_sync", "r1")["status"] == "success"
    assert list((tmp_path / "spool").iterdir()) == []
