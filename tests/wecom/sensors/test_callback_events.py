"""The sensor: a sensor like any other (poke, reschedule, timeout, soft_fail), deferring by default.

Its defaults come from the ``[wecom]`` section; the deferral's end (events, an error event, the timeout)
is resumed through ``resume_execution`` as the task runner does it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from sqlalchemy import create_engine

from tests.support.airflow_runner import target_connection
from tests.wecom.callbacks.support import CORP, event_xml, store_event
from wecom.callbacks.parse import parse_event
from wecom.sensors.callback_events import CallbackEventsSensor
from wecom.store.loader import DirectoryLoader
from wecom.triggers.callback_events import CallbackEventsTrigger

# What the task runner passes when a trigger's timeout ended the deferral (TriggerFailureReason.TRIGGER_TIMEOUT).
DEFERRAL_TIMED_OUT = ("__fail__", {"error": "Trigger timeout"})


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


def store(engine) -> None:
    xml = event_xml("delete_user", 1_790_000_000, UserID="u1")
    store_event(engine, CORP, parse_event(xml), xml, datetime.now(UTC))


def sensor(**kwargs) -> CallbackEventsSensor:
    return CallbackEventsSensor(task_id="wait_for_callbacks", **kwargs)


def test_defaults_come_from_the_wecom_section(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = sensor()
    assert (defaults.poke_interval, defaults.timeout, defaults.deferrable, defaults.attempts) == (5, 3600, True, 5)
    monkeypatch.setenv("AIRFLOW__WECOM__CALLBACK_POLL_INTERVAL", "2.5")
    monkeypatch.setenv("AIRFLOW__WECOM__CALLBACK_WAIT_TIMEOUT", "600")
    monkeypatch.setenv("AIRFLOW__WECOM__DEFAULT_DEFERRABLE", "False")
    monkeypatch.setenv("AIRFLOW__WECOM__CALLBACK_MAX_ATTEMPTS", "9")
    configured = sensor()
    assert (configured.poke_interval, configured.timeout, configured.deferrable, configured.attempts) == (
        2.5,
        600,
        False,
        9,
    )
    given = sensor(poke_interval=1, timeout=timedelta(minutes=2), deferrable=True, max_attempts=3)
    assert (given.poke_interval, given.timeout, given.deferrable, given.attempts) == (1, 120, True, 3)


def test_the_conn_id_is_templated() -> None:
    assert "wecom_conn_id" in CallbackEventsSensor.template_fields
    assert sensor(wecom_conn_id="wecom_acme").hook.wecom_conn_id == "wecom_acme"


def test_defers_to_the_trigger_while_nothing_is_pending(engine) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        sensor(poke_interval=2, timeout=600, max_attempts=4).execute({})
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


def test_poke_counts_once(engine) -> None:
    waiting = sensor()
    assert not waiting.poke({})
    store(engine)
    found = waiting.poke({})
    assert found.is_done and found.xcom_value == 1


def test_returns_the_count_when_events_wait_without_deferring(engine) -> None:
    store(engine)
    assert sensor().execute({}) == 1
    assert sensor(deferrable=False).execute({}) == 1


def test_back_from_the_trigger_it_returns_the_count_or_fails_with_the_error(engine) -> None:
    success = {"event": {"status": "success", "corp_id": CORP, "ready": 3}}
    assert sensor().resume_execution("execute_complete", success, {}) == 3
    error = {"event": {"status": "error", "corp_id": CORP, "message": "cannot count: OperationalError"}}
    with pytest.raises(AirflowException, match="cannot count: OperationalError"):
        sensor().resume_execution("execute_complete", error, {})


def test_a_deferral_that_times_out_is_a_sensor_timeout_or_with_soft_fail_a_skip(engine) -> None:
    with pytest.raises(AirflowSensorTimeout):
        sensor().resume_execution(*DEFERRAL_TIMED_OUT, {})
    with pytest.raises(AirflowSkipException):
        sensor(soft_fail=True).resume_execution(*DEFERRAL_TIMED_OUT, {})


def test_poke_mode_times_out_like_any_sensor(engine) -> None:
    with pytest.raises(AirflowSensorTimeout):
        sensor(deferrable=False, timeout=0, poke_interval=0).execute({})
    with pytest.raises(AirflowSkipException):
        sensor(deferrable=False, timeout=0, poke_interval=0, soft_fail=True).execute({})


def test_reschedule_mode_gives_the_slot_back_between_pokes(engine) -> None:
    """mode="reschedule": nothing ready, so the task asks to be rescheduled after its (backed-off) interval."""
    ti = SimpleNamespace(get_first_reschedule_date=lambda context: None)
    rescheduling = sensor(deferrable=False, mode="reschedule", poke_interval=30, exponential_backoff=True)
    before = datetime.now(UTC)
    with pytest.raises(AirflowRescheduleException) as rescheduled:
        rescheduling.execute({"ti": ti})
    assert before < rescheduled.value.reschedule_date <= datetime.now(UTC) + timedelta(seconds=30 * 2)
