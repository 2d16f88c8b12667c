"""The receiver under a database that is down, locked, slow or frozen: 503 within the deadline, then back.

Each answer must come inside WeCom's window whatever the database does; the
deadline and timeouts are set through ``ReceiverLimits`` and each test checks
which bound fired by the one log line's cause, never by wall time.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.wecom.api.test_crypto import AES_KEY, CORP_ID, TOKEN
from tests.wecom.callbacks.test_parse import EVENTS, event_xml
from tests.wecom.callbacks.test_receiver import (
    CONN_ID,
    MEMBER_EVENT,
    URL,
    Resolver,
    envelope,
    stored,
    without_secrets,
)
from wecom.callbacks.events_table import ensure_callback_events_table
from wecom.callbacks.receiver import create_receiver_app
from wecom.callbacks.receiver_config import APPLICATION_NAME, ReceiverConfig, ReceiverLimits, receiver_engine
from wecom.store.engine import create_target_engine

postgres_only = pytest.mark.parametrize("target_engine", ["postgresql"], indirect=True)


@pytest.fixture
def sqlite_receiver(tmp_path: Path) -> Iterator[tuple[TestClient, Resolver, Engine]]:
    """The receiver on a SQLite file that waits 0.5 s for the write lock."""
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}", timeout_s=0.5)
    resolver = Resolver(ReceiverConfig(corp_id=CORP_ID, token=TOKEN, encoding_aes_key=AES_KEY, engine=engine))
    with TestClient(create_receiver_app(resolver, cache_ttl_s=0)) as client:
        yield client, resolver, engine
    engine.dispose()


def test_unreachable_database_answers_503_then_the_retry_is_stored(
    sqlite_receiver: tuple[TestClient, Resolver, Engine], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client, resolver, engine = sqlite_receiver
    good = resolver.configs[CONN_ID]
    unreachable = create_target_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'target.db'}", timeout_s=0.5)
    resolver.configs[CONN_ID] = replace(good, engine=unreachable)
    body, params = envelope(MEMBER_EVENT)
    response = client.post(URL, params=params, content=body)
    assert response.status_code == 503
    assert "database unavailable (OperationalError)" in without_secrets(caplog)[0]
    resolver.configs[CONN_ID] = good
    response = client.post(URL, params=params, content=body)
    assert (response.status_code, response.text) == (200, "success")
    (row,) = stored(engine)
    assert row["delivery_count"] == 1


def test_locked_sqlite_answers_503_naming_the_lock_and_stores_nothing_half_way(
    sqlite_receiver: tuple[TestClient, Resolver, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    client, _, engine = sqlite_receiver
    first, first_params = envelope(EVENTS["delete_user"][0])
    assert client.post(URL, params=first_params, content=first).status_code == 200
    body, params = envelope(MEMBER_EVENT)
    with engine.connect() as blocker:
        blocker.exec_driver_sql("BEGIN EXCLUSIVE")
        assert client.post(URL, params=params, content=body).status_code == 503
        blocker.exec_driver_sql("ROLLBACK")
    (line,) = without_secrets(caplog)
    assert "SQLite database is locked by another writer" in line
    assert len(stored(engine)) == 1
    assert client.post(URL, params=params, content=body).status_code == 200
    assert len(stored(engine)) == 2


@pytest.mark.postgres
def test_closed_postgres_port_answers_503(
    sqlite_receiver: tuple[TestClient, Resolver, Engine], postgres_url: str
) -> None:
    client, resolver, _ = sqlite_receiver
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = create_target_engine(f"postgresql+psycopg2://u:p@127.0.0.1:{port}/db", timeout_s=1)
    resolver.configs[CONN_ID] = replace(resolver.configs[CONN_ID], engine=down)
    body, params = envelope(MEMBER_EVENT)
    assert client.post(URL, params=params, content=body).status_code == 503
    up = create_target_engine(postgres_url, timeout_s=5)
    with up.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS wecom_callback_events"))
    resolver.configs[CONN_ID] = replace(resolver.configs[CONN_ID], engine=up)
    assert client.post(URL, params=params, content=body).status_code == 200
    with up.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM wecom_callback_events")).scalar_one() == 1
    up.dispose()


def test_no_free_connection_answers_503_naming_the_pool(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    limits = ReceiverLimits(pool_timeout_s=0.2)
    engine = receiver_engine(f"sqlite:///{tmp_path / 'target.db'}", limits)
    config = ReceiverConfig(corp_id=CORP_ID, token=TOKEN, encoding_aes_key=AES_KEY, engine=engine)
    held = [engine.connect() for _ in range(5 + 10)]  # QueuePool's defaults: 5 connections and 10 overflow
    body, params = envelope(MEMBER_EVENT)
    with TestClient(create_receiver_app(Resolver(config), limits=limits)) as client:
        assert client.post(URL, params=params, content=body).status_code == 503
        for connection in held:
            connection.close()
        assert client.post(URL, params=params, content=body).text == "success"
    assert "no database connection free in time (pool exhausted)" in without_secrets(caplog)[0]
    engine.dispose()


# PostgreSQL: the receiver's own engine, with its session timeouts


def receiving(target_engine: Engine, limits: ReceiverLimits) -> tuple[TestClient, Engine]:
    engine = receiver_engine(target_engine.url, limits)
    config = ReceiverConfig(corp_id=CORP_ID, token=TOKEN, encoding_aes_key=AES_KEY, engine=engine)
    return TestClient(create_receiver_app(Resolver(config), cache_ttl_s=0, limits=limits)), engine


def count_rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return connection.execute(text("SELECT COUNT(*), SUM(delivery_count) FROM wecom_callback_events")).one()


@postgres_only
@pytest.mark.postgres
def test_the_receivers_sessions_carry_the_timeouts(target_engine: Engine) -> None:
    engine = receiver_engine(target_engine.url, ReceiverLimits(statement_timeout_s=2.5, lock_timeout_s=1.5))
    with engine.connect() as connection:
        settings = [
            connection.exec_driver_sql(f"SHOW {name}").scalar_one()
            for name in ("statement_timeout", "lock_timeout", "application_name")
        ]
    assert settings == ["2500ms", "1500ms", APPLICATION_NAME]
    engine.dispose()


@postgres_only
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("limits", "cause"),
    [
        (ReceiverLimits(lock_timeout_s=0.3, statement_timeout_s=60, write_deadline_s=60), "lock timeout"),
        (ReceiverLimits(lock_timeout_s=60, statement_timeout_s=0.3, write_deadline_s=60), "statement timeout"),
        (
            ReceiverLimits(lock_timeout_s=60, statement_timeout_s=60, write_deadline_s=0.5),
            "database write did not finish within the 0.5 s deadline",
        ),
    ],
)
def test_locked_table_answers_503_naming_the_bound_then_the_retry_is_stored(
    target_engine: Engine, caplog: pytest.LogCaptureFixture, limits: ReceiverLimits, cause: str
) -> None:
    """A migration holding the table (LOCK TABLE in an open transaction): every bound answers, and says which."""
    ensure_callback_events_table(target_engine)
    client, engine = receiving(target_engine, limits)
    body, params = envelope(MEMBER_EVENT)
    with client, target_engine.connect() as migration:
        migration.execute(text("LOCK TABLE wecom_callback_events IN ACCESS EXCLUSIVE MODE"))
        assert client.post(URL, params=params, content=body).status_code == 503
        migration.rollback()
        assert client.post(URL, params=params, content=body).text == "success"
    (line,) = without_secrets(caplog)
    assert cause in line
    assert count_rows(target_engine)[0] == 1
    engine.dispose()


@postgres_only
@pytest.mark.postgres
def test_a_frozen_backend_costs_one_503_and_the_next_request_succeeds(
    target_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP the receiver's own backend: no server-side timeout can fire, only the write deadline."""
    ensure_callback_events_table(target_engine)
    client, engine = receiving(target_engine, ReceiverLimits(write_deadline_s=1.0))
    events = [envelope(event_xml("update_user", f"<UserID>u{i}</UserID>")) for i in range(4)]
    with client:
        assert client.post(URL, params=events[0][1], content=events[0][0]).text == "success"
        with target_engine.connect() as connection:
            (pid,) = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :a AND datname = current_database()"),
                {"a": APPLICATION_NAME},
            ).one()
        os.kill(pid, signal.SIGSTOP)
        try:
            assert client.post(URL, params=events[1][1], content=events[1][0]).status_code == 503
            assert client.post(URL, params=events[2][1], content=events[2][0]).text == "success"
        finally:
            os.kill(pid, signal.SIGCONT)
        assert client.post(URL, params=events[3][1], content=events[3][0]).text == "success"
    assert "within the 1 s deadline" in without_secrets(caplog)[0]
    assert count_rows(target_engine)[0] >= 3  # the frozen write may land once the backend resumes
    engine.dispose()


@postgres_only
@pytest.mark.postgres
def test_two_receivers_store_the_same_and_different_events_without_a_503(target_engine: Engine) -> None:
    """Two receivers (own app, own engine) each get the same 150 events and 50 of their own, concurrently."""
    ensure_callback_events_table(target_engine)
    shared = [event_xml("update_user", f"<UserID>s{i}</UserID>") for i in range(150)]
    receivers = [receiving(target_engine, ReceiverLimits()) for _ in range(2)]

    def deliver(index: int) -> list[int]:
        client, _ = receivers[index]
        own = [event_xml("update_user", f"<UserID>r{index}_{i}</UserID>") for i in range(50)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            requests = [envelope(message) for message in (shared + own)[:: 1 if index else -1]]
            return list(pool.map(lambda r: client.post(URL, params=r[1], content=r[0]).status_code, requests))

    with receivers[0][0], receivers[1][0], ThreadPoolExecutor(max_workers=2) as both:
        statuses = [status for answered in both.map(deliver, [0, 1]) for status in answered]
    assert set(statuses) == {200}
    assert count_rows(target_engine) == (250, 400)
    for _, engine in receivers:
        engine.dispose()
