"""The sensor: returns at once when events wait, defers to the trigger (holding no slot) when none do."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import TaskDeferred
from sqlalchemy import create_engine

from tests.support.airflow_runner import target_connection
from tests.wecom.callbacks.support import CORP, event_xml
from wecom.callbacks.events_table import store_event
from wecom.callbacks.parse import parse_event
from wecom.sensors.callback_events import CallbackEventsSensor
from wecom.store.loader import DirectoryLoader
from wecom.triggers.callback_events import CallbackEventsTrigger


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"sqlite:///{tmp_path / 'target.db'}"
    engine = create_engine(url)
    DirectoryLoader(engine).ensure_schema()
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_TARGET_DB", target_connection(url))
    monkeypatch.setenv(
        "AIRFLOW_CONN_WECOM_DEFAULT",
        json.dumps({"conn_type": "wecom", "login": CORP, "password": "sensor-secret"}),
    )
    yield engine
    engine.dispose()


def sensor() -> CallbackEventsSensor:
    return CallbackEventsSensor(task_id="wait_for_callbacks", poke_interval=2, timeout=600, max_attempts=4)


def test_defers_to_the_trigger_while_nothing_is_pending(engine) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        sensor().execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, CallbackEventsTrigger)
    assert (trigger.target_conn_id, trigger.corp_id, trigger.poll_interval, trigger.max_attempts) == (
        "wecom_target_db",
        CORP,
        2,
        4,
    )
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=600)


def test_polls_the_database_the_wecom_connection_names(engine, tmp_path: Path, monkeypatch) -> None:
    """The sensor, the receiver and every task read the target from the wecom connection's extra."""
    other = f"sqlite:///{tmp_path / 'other.db'}"
    DirectoryLoader(create_engine(other)).ensure_schema()
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_DB", target_connection(other))
    monkeypatch.setenv(
        "AIRFLOW_CONN_WECOM_DEFAULT",
        json.dumps(
            {"conn_type": "wecom", "login": CORP, "password": "sensor-secret", "extra": {"target_conn_id": "other_db"}}
        ),
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor().execute({})
    assert deferred.value.trigger.target_conn_id == "other_db"


def test_returns_the_count_when_events_wait(engine) -> None:
    xml = event_xml("delete_user", 1_790_000_000, UserID="u1")
    store_event(engine, CORP, parse_event(xml), xml, datetime.now(UTC))
    assert sensor().execute({}) == 1
    assert sensor().execute_complete({}, {"corp_id": CORP, "ready": 3}) == 3
