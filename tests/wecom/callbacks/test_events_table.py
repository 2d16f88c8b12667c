"""Storing each distinct event exactly once, checking the table once, and the grants a role needs."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import ProgrammingError

from tests.wecom.callbacks.support import store_event
from tests.wecom.callbacks.test_parse import CORP_ID, CREATE_TIME, EVENTS, event_xml
from wecom.callbacks.events_table import (
    NewEvent,
    check_events_table,
    ensure_callback_events_table,
    store_events,
)
from wecom.callbacks.parse import dedup_key, parse_event
from wecom.callbacks.receiver_config import ReceiverLimits, receiver_engine
from wecom.errors import EventsTableError
from wecom.store.engine import create_target_engine
from wecom.store.loader import DirectoryLoader
from wecom.store.sql import parse_db_time, read_statements


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}", timeout_s=2)
    ensure_callback_events_table(engine)
    return engine


def rows(engine: Engine) -> list[dict]:
    with engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM wecom_callback_events ORDER BY event_id"))
        return [dict(row._mapping) for row in result]


# Storing


def test_store_every_change_type_with_its_columns(engine: Engine) -> None:
    received_at = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    for name, (xml, *_rest) in EVENTS.items():
        assert store_event(engine, CORP_ID, parse_event(xml), xml, received_at, conn_id=name)
    stored = {row["conn_id"]: row for row in rows(engine)}
    assert set(stored) == set(EVENTS)
    for name, (xml, change_type, entity_type, entity_id, new_entity_id, status) in EVENTS.items():
        row = stored[name]
        assert row["corp_id"] == CORP_ID
        assert row["dedup_key"] == dedup_key(xml)
        assert (row["change_type"], row["entity_type"], row["entity_id"]) == (change_type, entity_type, entity_id)
        assert (row["new_entity_id"], row["status"]) == (new_entity_id, status)
        assert parse_db_time(row["received_at"]) == received_at
        assert parse_db_time(row["last_received_at"]) == received_at
        assert parse_db_time(row["create_time"]) == datetime.fromtimestamp(CREATE_TIME, UTC)
        assert json.loads(row["payload"]) == parse_event(xml).payload
        assert (row["attempts"], row["delivery_count"]) == (0, 1)
        assert row["last_error"] is None and row["applied_at"] is None and row["run_id"] is None


def test_redelivery_is_stored_once_and_counted(engine: Engine) -> None:
    xml = EVENTS["update_user_full"][0]
    first = datetime(2024, 5, 1, tzinfo=UTC)
    later = datetime(2024, 5, 1, 0, 0, 7, tzinfo=UTC)
    assert store_event(engine, CORP_ID, parse_event(xml), xml, first) is True
    assert store_event(engine, CORP_ID, parse_event(xml), xml, later) is False
    assert store_event(engine, CORP_ID, parse_event(xml), xml, later) is False
    (row,) = rows(engine)
    assert row["delivery_count"] == 3
    assert parse_db_time(row["received_at"]) == first
    assert parse_db_time(row["last_received_at"]) == later


def test_one_batch_stores_new_events_once_and_counts_redeliveries_within_it(engine: Engine) -> None:
    """The receiver commits whatever waits in one statement: a stored event, a new one and the new
    one's redelivery in the same batch (arrival order kept in the answer)."""
    stored, new = EVENTS["delete_user"][0], EVENTS["delete_party"][0]
    now = datetime(2024, 5, 1, tzinfo=UTC)
    store_event(engine, CORP_ID, parse_event(stored), stored, now)
    batch = [NewEvent(CORP_ID, None, parse_event(xml), xml, now) for xml in (new, stored, new)]
    with engine.begin() as connection:
        assert store_events(connection, batch) == [True, False, False]
    counts = {row["dedup_key"]: row["delivery_count"] for row in rows(engine)}
    assert counts == {dedup_key(stored): 2, dedup_key(new): 2}


def test_redelivery_leaves_a_handled_row_alone(engine: Engine) -> None:
    xml = EVENTS["delete_user"][0]
    now = datetime.now(UTC)
    store_event(engine, CORP_ID, parse_event(xml), xml, now)
    with engine.begin() as connection:
        connection.execute(text("UPDATE wecom_callback_events SET status = 'applied', attempts = 1"))
    assert store_event(engine, CORP_ID, parse_event(xml), xml, now) is False
    (row,) = rows(engine)
    assert (row["status"], row["attempts"], row["delivery_count"]) == ("applied", 1, 2)


def test_dedup_is_per_corp_and_per_exact_message(engine: Engine) -> None:
    xml = EVENTS["delete_user"][0]
    same_change_other_time = event_xml("delete_user", "<UserID>wangwu</UserID>", create_time=CREATE_TIME + 1)
    now = datetime.now(UTC)
    assert store_event(engine, CORP_ID, parse_event(xml), xml, now)
    assert store_event(engine, "ww_other_corp", parse_event(xml), xml, now)
    assert store_event(engine, CORP_ID, parse_event(same_change_other_time), same_change_other_time, now)
    assert len(rows(engine)) == 3


def test_events_are_stored_in_the_callers_transaction(engine: Engine) -> None:
    xml = EVENTS["delete_party"][0]
    event = NewEvent(CORP_ID, None, parse_event(xml), xml, datetime.now(UTC))
    with engine.connect() as connection:
        transaction = connection.begin()
        assert store_events(connection, [event, event]) == [True, False]
        transaction.rollback()
    assert rows(engine) == []
    with engine.begin() as connection:
        assert store_events(connection, [event]) == [True]
    assert len(rows(engine)) == 1


def test_schema_is_idempotent_and_indexed(engine: Engine) -> None:
    ensure_callback_events_table(engine)
    ensure_callback_events_table(engine)
    with engine.connect() as connection:
        indexes = {
            row[0]
            for row in connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'wecom_callback_events'")
            )
        }
        plan = " ".join(
            str(row[-1])
            for row in connection.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT event_id FROM wecom_callback_events "
                    "WHERE corp_id = :c AND status = 'pending' ORDER BY create_time, event_id"
                ),
                {"c": CORP_ID},
            )
        )
    assert {"wecom_callback_events_queue", "wecom_callback_events_by_entity"} <= indexes
    assert "wecom_callback_events_queue" in plan and "TEMP B-TREE" not in plan


def test_status_must_be_a_known_one(engine: Engine) -> None:
    store_event(engine, CORP_ID, parse_event(EVENTS["delete_user"][0]), EVENTS["delete_user"][0], datetime.now(UTC))
    with pytest.raises(Exception, match="CHECK"), engine.begin() as connection:
        connection.execute(text("UPDATE wecom_callback_events SET status = 'done'"))


def test_naive_received_at_is_refused(engine: Engine) -> None:
    xml = EVENTS["delete_user"][0]
    with pytest.raises(ValueError, match="naive"):
        store_event(engine, CORP_ID, parse_event(xml), xml, datetime(2024, 1, 1))


@pytest.mark.postgres
def test_postgres_store_and_redelivery(postgres_url: str) -> None:
    engine = create_target_engine(postgres_url, timeout_s=5)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS wecom_callback_events"))
    ensure_callback_events_table(engine)
    ensure_callback_events_table(engine)
    now = datetime.now(UTC)
    for xml, *_ in EVENTS.values():
        assert store_event(engine, CORP_ID, parse_event(xml), xml, now, conn_id="pg")
    xml = EVENTS["update_user_full"][0]
    assert store_event(engine, CORP_ID, parse_event(xml), xml, now) is False
    with engine.connect() as connection:
        count, deliveries = connection.execute(
            text("SELECT COUNT(*), SUM(delivery_count) FROM wecom_callback_events")
        ).one()
        create_time = connection.execute(text("SELECT MIN(create_time) FROM wecom_callback_events")).scalar_one()
    assert (count, deliveries) == (len(EVENTS), len(EVENTS) + 1)
    assert create_time == datetime.fromtimestamp(CREATE_TIME, UTC)
    engine.dispose()


# Checking the table once


def test_check_creates_a_missing_table_and_passes_on_an_existing_one(target_engine: Engine) -> None:
    check_events_table(target_engine)
    check_events_table(target_engine)
    xml = EVENTS["delete_user"][0]
    assert store_event(target_engine, CORP_ID, parse_event(xml), xml, NOW)


def test_check_names_the_columns_an_older_table_lacks(tmp_path: Path) -> None:
    engine = create_target_engine(f"sqlite:///{tmp_path / 'old.db'}")
    ensure_callback_events_table(engine)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE wecom_callback_events DROP COLUMN new_entity_id"))
    with pytest.raises(EventsTableError, match=r"lacks columns \['new_entity_id'\]"):
        check_events_table(engine)
    engine.dispose()


# PostgreSQL: roles, grants, concurrent receivers

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
postgres_only = pytest.mark.parametrize("target_engine", ["postgresql"], indirect=True)


def as_role(engine: Engine, role: str) -> Engine:
    """An engine logging in as ``role`` (created once per server; the throwaway cluster trusts loopback)."""
    with engine.begin() as connection:
        if not connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
            connection.execute(text(f"CREATE ROLE {role} LOGIN"))
    return create_engine(engine.url.set(username=role))


def run_file(engine: Engine, relpath: str) -> None:
    with engine.begin() as connection:
        for statement in read_statements(relpath, "postgresql"):
            connection.execute(text(statement))


@pytest.fixture
def receiver_role(target_engine: Engine) -> Iterator[Engine]:
    """The owner created the table and ran grants/receiver.sql; yields the receiver role's engine."""
    receiver = as_role(target_engine, "wecom_receiver")
    ensure_callback_events_table(target_engine)
    run_file(target_engine, "grants/receiver.sql")
    yield receiver
    receiver.dispose()


@postgres_only
@pytest.mark.postgres
def test_the_receiver_grants_are_enough_and_no_more(target_engine: Engine, receiver_role: Engine) -> None:
    check_events_table(receiver_role)
    xml = EVENTS["update_user_full"][0]
    assert store_event(receiver_role, CORP_ID, parse_event(xml), xml, NOW) is True
    assert store_event(receiver_role, CORP_ID, parse_event(xml), xml, NOW) is False
    for forbidden in ["SELECT payload FROM wecom_callback_events", "UPDATE wecom_callback_events SET status = 'dead'"]:
        with pytest.raises(ProgrammingError, match="permission denied"), receiver_role.begin() as connection:
            connection.execute(text(forbidden))
    with target_engine.connect() as connection:
        assert connection.execute(text("SELECT delivery_count FROM wecom_callback_events")).scalar_one() == 2


@postgres_only
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("revoke", "named"),
    [
        ("INSERT", "INSERT ON wecom_callback_events"),
        ("SELECT (dedup_key)", "SELECT (dedup_key) ON wecom_callback_events"),
        ("UPDATE (delivery_count)", "UPDATE (delivery_count) ON wecom_callback_events"),
    ],
)
def test_a_missing_grant_fails_the_check_naming_it(
    target_engine: Engine, receiver_role: Engine, revoke: str, named: str
) -> None:
    with target_engine.begin() as connection:
        connection.execute(text(f"REVOKE {revoke} ON wecom_callback_events FROM wecom_receiver"))
    with pytest.raises(EventsTableError) as excinfo:
        check_events_table(receiver_role)
    assert str(excinfo.value) == (f"role wecom_receiver lacks GRANT {named} (see include/sql/grants/receiver.sql)")


@postgres_only
@pytest.mark.postgres
def test_a_role_that_may_not_create_the_missing_table_is_told_how_to_get_it(target_engine: Engine) -> None:
    receiver = as_role(target_engine, "wecom_receiver")
    with pytest.raises(EventsTableError, match="does not exist and role wecom_receiver may not create it"):
        check_events_table(receiver)
    receiver.dispose()


@postgres_only
@pytest.mark.postgres
def test_the_dag_role_creates_the_tables_and_grants_the_receiver(target_engine: Engine) -> None:
    dag, receiver = as_role(target_engine, "wecom_dag"), as_role(target_engine, "wecom_receiver")
    run_file(target_engine, "grants/dag.sql")
    DirectoryLoader(dag).ensure_schema()
    DirectoryLoader(dag).ensure_schema()
    run_file(dag, "grants/receiver.sql")
    check_events_table(receiver)
    xml = EVENTS["delete_party"][0]
    assert store_event(receiver, CORP_ID, parse_event(xml), xml, NOW)
    for engine in (dag, receiver):
        engine.dispose()


@postgres_only
@pytest.mark.postgres
def test_a_redelivery_does_not_wait_for_a_row_another_transaction_holds(target_engine: Engine) -> None:
    ensure_callback_events_table(target_engine)
    xml = EVENTS["delete_user"][0]
    store_event(target_engine, CORP_ID, parse_event(xml), xml, NOW)
    impatient = receiver_engine(target_engine.url, ReceiverLimits(lock_timeout_s=0.2))
    with target_engine.connect() as holder:
        holder.execute(text("UPDATE wecom_callback_events SET status = 'applied'"))  # row lock held, not committed
        assert store_event(impatient, CORP_ID, parse_event(xml), xml, NOW) is False
        holder.rollback()
    assert store_event(impatient, CORP_ID, parse_event(xml), xml, NOW) is False
    with target_engine.connect() as connection:
        assert connection.execute(text("SELECT delivery_count FROM wecom_callback_events")).scalar_one() == 2
    impatient.dispose()


@postgres_only
@pytest.mark.postgres
def test_concurrent_writers_with_crossing_batches_do_not_deadlock(target_engine: Engine) -> None:
    """Two writers store the same 300 events (and 100 of their own) in batches of 25, shuffled differently."""
    ensure_callback_events_table(target_engine)
    shared = [event_xml("update_user", f"<UserID>s{i}</UserID>") for i in range(300)]
    errors: list[BaseException] = []
    results: list[bool] = []

    def writer(seed: int) -> None:
        own = [event_xml("update_user", f"<UserID>w{seed}_{i}</UserID>") for i in range(100)]
        messages = shared + own
        random.Random(seed).shuffle(messages)
        engine = receiver_engine(target_engine.url, ReceiverLimits(lock_timeout_s=10, statement_timeout_s=20))
        try:
            for start in range(0, len(messages), 25):
                batch = [NewEvent(CORP_ID, "c", parse_event(m), m, NOW) for m in messages[start : start + 25]]
                with engine.begin() as connection:
                    results.extend(store_events(connection, batch))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert (results.count(True), results.count(False)) == (500, 300)
    with target_engine.connect() as connection:
        count, deliveries = connection.execute(
            text("SELECT COUNT(*), SUM(delivery_count) FROM wecom_callback_events")
        ).one()
    assert (count, deliveries) == (500, 800)
