"""The trigger and its probe on real SQLite and PostgreSQL, driven through ``run()`` without a clock:
silent while nothing waits, fires once events do, and ends in an error event (never an exception)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url

from tests.support.airflow_runner import target_connection
from tests.wecom.callbacks.support import CORP, event_xml, store_event
from wecom.callbacks.parse import parse_event
from wecom.callbacks.pending import PendingProbe, async_url
from wecom.store.loader import DirectoryLoader
from wecom.triggers.callback_events import CallbackEventsTrigger


def store(engine: Engine, change_type: str, **fields: object) -> None:
    xml = event_xml(change_type, 1_790_000_000, **fields)
    store_event(engine, CORP, parse_event(xml), xml, datetime.now(UTC))


@pytest.fixture
def engine(target_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    DirectoryLoader(target_engine).ensure_schema()
    url = target_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("AIRFLOW_CONN_EVENTS_DB", target_connection(url))
    return target_engine


def first_event(trigger: CallbackEventsTrigger) -> dict:
    """Drive ``run()`` to its first event, as the triggerer does, and check that it is the last."""

    async def drive() -> dict:
        runner = trigger.run()
        event = await anext(runner)
        with pytest.raises(StopAsyncIteration):
            await anext(runner)
        return event.payload

    return asyncio.run(drive())


def test_serializes_to_its_importable_path() -> None:
    trigger = CallbackEventsTrigger("events_db", CORP, poll_interval=0.5, max_attempts=3)
    classpath, kwargs = trigger.serialize()
    assert classpath == "wecom.triggers.callback_events.CallbackEventsTrigger"
    assert CallbackEventsTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_fires_once_events_are_ready_and_not_before(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two polls find only an ignored event (a change type the directory does not know); a member event
    stored during the second wait fires it."""
    store(engine, "merge_universe", UserID="u0")
    waits: list[float] = []

    async def between_polls(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            await asyncio.to_thread(store, engine, "delete_user", UserID="u1")

    monkeypatch.setattr(PendingProbe, "sleep", staticmethod(between_polls))
    event = first_event(CallbackEventsTrigger("events_db", CORP, poll_interval=7.5))
    assert event == {"status": "success", "corp_id": CORP, "ready": 1}
    assert waits == [7.5, 7.5]  # it counted three times, waiting its interval between


def test_an_unknown_connection_ends_in_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NOWHERE", raising=False)
    event = first_event(CallbackEventsTrigger("nowhere", CORP))
    assert event["status"] == "error" and event["corp_id"] == CORP
    assert "'nowhere'" in event["message"] and "AirflowNotFoundException" in event["message"]


def test_a_database_that_cannot_be_read_ends_in_an_error_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database without the events table (here: an empty file) is reported, not retried for ever."""
    monkeypatch.setenv("AIRFLOW_CONN_EMPTY_DB", target_connection(f"sqlite:///{tmp_path / 'empty.db'}"))
    event = first_event(CallbackEventsTrigger("empty_db", CORP))
    assert event["status"] == "error"
    assert event["message"].startswith(f"cannot count the ready callback events of corp '{CORP}' in target database")
    assert "wecom_callback_events" in event["message"]


def test_probe_uses_the_async_driver_and_threads_only_for_libpq_options(engine: Engine) -> None:
    store(engine, "delete_user", UserID="u1")
    store(engine, "delete_user", UserID="u2")
    url = engine.url
    assert async_url(url) is not None
    urls = [url]
    if url.get_backend_name() == "postgresql":
        with_options = make_url(url.render_as_string(hide_password=False)).update_query_dict(
            {"application_name": "probe"}
        )
        assert async_url(with_options) is None
        urls.append(with_options)

    async def count(target) -> tuple[bool, int]:
        probe = PendingProbe(target, CORP, max_attempts=5)
        try:
            return probe._async is not None, await probe.count()  # the async driver, not a thread
        finally:
            await probe.close()

    assert [asyncio.run(count(u)) for u in urls] == [(True, 2), (False, 2)][: len(urls)]
