"""The trigger and its probe on real SQLite and PostgreSQL: silent while nothing waits, fires once events do."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, make_url

from tests.support.airflow_runner import target_connection
from tests.wecom.callbacks.support import CORP, event_xml
from wecom.callbacks.events_table import store_event
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


def test_serializes_to_its_importable_path() -> None:
    trigger = CallbackEventsTrigger("events_db", CORP, poll_interval=0.5, max_attempts=3)
    classpath, kwargs = trigger.serialize()
    assert classpath == "wecom.triggers.callback_events.CallbackEventsTrigger"
    assert CallbackEventsTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_fires_once_events_are_ready_and_not_before(engine: Engine) -> None:
    store(engine, "update_tag", TagId=1)

    async def scenario() -> dict:
        runner = CallbackEventsTrigger("events_db", CORP, poll_interval=0.05).run()
        first = asyncio.ensure_future(anext(runner))
        await asyncio.sleep(0.5)
        assert not first.done(), "fired although only an ignored tag event is stored"
        await asyncio.to_thread(store, engine, "delete_user", UserID="u1")
        event = await asyncio.wait_for(first, timeout=10)
        await runner.aclose()
        return event.payload

    assert asyncio.run(scenario()) == {"corp_id": CORP, "ready": 1}


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
            return probe.is_async, await probe.count()
        finally:
            await probe.close()

    assert [asyncio.run(count(u)) for u in urls] == [(True, 2), (False, 2)][: len(urls)]
