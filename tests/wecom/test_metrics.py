"""Metrics go through Airflow's own metrics layer (``airflow.sdk.observability.stats``) under ``wecom.``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from airflow.sdk import BaseHook
from airflow.sdk._shared.observability.metrics import stats as airflow_stats
from sqlalchemy import create_engine

from wecom import company_context
from wecom.airflow_tasks import emit_run_metrics, record_failure, report_callback_queue
from wecom.company_context import CompanyContext
from wecom.errors import WeComConfigError
from wecom.metrics import name
from wecom.store.loader import DirectoryLoader
from wecom_simulator.org import generate_org
from wecom_simulator.testing import running_simulator


class Recorder:
    """A StatsLogger that keeps what it is given: the backend Airflow would hand to StatsD or OTel."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, object, dict]] = []

    def incr(self, stat, count=1, rate=1, *, tags=None):
        self.sent.append(("incr", stat, count, tags or {}))

    def gauge(self, stat, value, rate=1, delta=False, *, tags=None):
        self.sent.append(("gauge", stat, value, tags or {}))

    def timing(self, stat, dt, *, tags=None):
        self.sent.append(("timing", stat, dt, tags or {}))

    def by_name(self) -> dict[str, tuple[str, object, dict]]:
        return {stat: (kind, value, tags) for kind, stat, value, tags in self.sent}


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    airflow_stats.initialize(factory=lambda: recorder, export_legacy_names=False)
    yield recorder
    airflow_stats.initialize(factory=airflow_stats.NoStatsLogger, export_legacy_names=False)


def test_names_are_prefixed_and_safe() -> None:
    assert name("api", "calls", "user/get") == "wecom.api.calls.user_get"


def test_a_run_row_becomes_counts_durations_and_api_calls(recorder: Recorder) -> None:
    start = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    row = {
        "corp_id": "wwm",
        "kind": "full",
        "status": "success",
        "started_at": "2026-11-26 03:00:00.000000",  # SQLite's text form
        "finished_at": start + timedelta(seconds=95),
        "departments_seen": 40,
        "users_seen": 1000,
        "users_inserted": 12,
        "users_deleted": 0,
        "api_calls_by_endpoint": json.dumps({"user/list": 40, "gettoken": 1}),
        "throttled": 2,
    }
    emit_run_metrics(row)
    sent = recorder.by_name()
    tags = {"corp_id": "wwm", "kind": "full"}
    assert sent["wecom.sync.runs.success"] == ("incr", 1, tags)
    assert sent["wecom.sync.duration.full"] == ("timing", timedelta(seconds=95), tags)
    assert sent["wecom.directory.members"] == ("gauge", 1000, tags)
    assert sent["wecom.directory.departments"] == ("gauge", 40, tags)
    assert sent["wecom.sync.users.inserted"] == ("incr", 12, tags)
    assert "wecom.sync.users.deleted" not in sent
    assert sent["wecom.api.calls"] == ("incr", 41, tags)
    assert sent["wecom.api.calls.user_list"] == ("incr", 40, tags)
    assert sent["wecom.api.throttled"] == ("incr", 2, tags)


@pytest.fixture
def company(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A simulator with a robot, the wecom connection pointing at it, and a target database with the schema."""
    with running_simulator(generate_org(members=3, departments=2), corp_id="wwm", secret="s3cret") as sim:
        wecom = {
            "conn_type": "wecom",
            "host": sim.base_url,
            "login": "wwm",
            "password": "s3cret",
            "extra": {
                "robot_webhook_url": f"{sim.base_url}/cgi-bin/webhook/send?key=robot-key-1",
                "target_conn_id": "target_m",
            },
        }
        monkeypatch.setenv("AIRFLOW_CONN_WECOM_M", json.dumps(wecom))
        db = tmp_path / "target.db"
        monkeypatch.setenv("AIRFLOW_CONN_TARGET_M", json.dumps({"conn_type": "sqlite", "host": str(db)}))
        engine = create_engine(f"sqlite:///{db}")
        DirectoryLoader(engine).ensure_schema()
        yield sim, engine
        engine.dispose()


def _context(error: BaseException | None = None) -> dict:
    dag_run = SimpleNamespace(dag_id="wecom_directory_sync", run_id="manual__1", start_date=datetime.now(UTC))
    return {"dag_run": dag_run, "ti": SimpleNamespace(task_id="extract"), "exception": error, "logical_date": None}


def test_failure_callback_records_counts_and_alerts(company, recorder: Recorder) -> None:
    sim, _ = company
    record_failure("wecom_m")(_context(WeComConfigError("invalid secret (40001)")))
    assert recorder.by_name()["wecom.sync.runs.failed"][0] == "incr"
    (message,) = httpx.get(f"{sim.base_url}/_sim/robot/messages").json()["messages"]
    assert "run failed" in message["content"] and "invalid secret (40001)" in message["content"]


def test_failure_callback_resolves_the_company_once(company, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording the run, its metrics and the robot alert share one reading of each connection and one engine."""
    read: list[str] = []
    engines: list[str] = []
    get_connection, make_engine = BaseHook.get_connection.__func__, company_context.engine_from_airflow_connection

    def counted_get_connection(cls, conn_id: str):
        read.append(conn_id)
        return get_connection(cls, conn_id)

    def counted_engine(connection):
        engines.append(connection.conn_id)
        return make_engine(connection)

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(counted_get_connection))
    monkeypatch.setattr(company_context, "engine_from_airflow_connection", counted_engine)
    record_failure("wecom_m")(_context(WeComConfigError("invalid secret (40001)")))
    assert sorted(read) == ["target_m", "wecom_m"]
    assert engines == ["target_m"]


def test_callback_queue_gauges_and_dead_event_alert(company, recorder: Recorder) -> None:
    sim, engine = company
    received = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with engine.begin() as conn:
        for key, status in (("p1", "pending"), ("p2", "pending"), ("d1", "dead")):
            conn.exec_driver_sql(
                "INSERT INTO wecom_callback_events (corp_id, dedup_key, received_at, last_received_at, "
                "create_time, change_type, entity_type, payload, status) "
                "VALUES ('wwm', ?, ?, ?, ?, 'update_user', 'user', '{}', ?)",
                (key, received, received, received, status),
            )
    with CompanyContext("wecom_m") as company:
        report_callback_queue(company, _context(), newly_dead=1)
    sent = recorder.by_name()
    assert sent["wecom.callback.pending"][1] == 2
    assert sent["wecom.callback.dead"][1] == 1
    assert 290 <= sent["wecom.callback.lag_seconds"][1] <= 400
    (message,) = httpx.get(f"{sim.base_url}/_sim/robot/messages").json()["messages"]
    assert "dead callback events" in message["content"] and "1 dead in all" in message["content"]
