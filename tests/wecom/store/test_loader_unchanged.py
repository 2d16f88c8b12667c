"""``DirectoryLoader.record_if_unchanged`` on SQLite and PostgreSQL: when a re-sync may skip transform and load."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from tests.support.snapshots import CORP, T0, membership, snapshot, user
from wecom.store.loader import DirectoryLoader
from wecom.store.run_records import RunRecord
from wecom.store.sql import db_time, read_statements

DIGEST = "d" * 64


def run(run_id: str, at_hours: float, digest: str | None = DIGEST, users: int = 2, departments: int = 2) -> RunRecord:
    return RunRecord(
        dag_id="wecom_directory_sync",
        run_id=run_id,
        corp_id=CORP,
        observed_at=T0 + timedelta(hours=at_hours),
        snapshot_digest=digest,
        departments_seen=departments,
        users_seen=users,
    )


def load(loader: DirectoryLoader, record: RunRecord, complete: bool = True) -> None:
    tables = snapshot(
        [user("alice", "A", "h1"), user("bob", "B", "h2")], [membership("alice", 2), membership("bob", 2)]
    )
    loader.load_snapshot(tables, run=record, observed_at=record.observed_at, complete=complete)


def add_event(loader: DirectoryLoader, status: str, created_hours: float, applied_hours: float | None = None) -> None:
    at = lambda hours: None if hours is None else db_time(T0 + timedelta(hours=hours), loader.dialect)  # noqa: E731
    with loader.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO wecom_callback_events (corp_id, dedup_key, received_at, last_received_at, create_time, "
                "change_type, entity_type, entity_id, payload, status, applied_at) "
                "VALUES (:corp, :key, :t, :t, :t, 'update_user', 'user', 'alice', '{}', :status, :applied)"
            ),
            {"corp": CORP, "key": f"{status}-{created_hours}", "t": at(created_hours), "status": status,
             "applied": at(applied_hours)},
        )  # fmt: skip


@pytest.fixture
def loader(target_engine: Engine) -> DirectoryLoader:
    loader = DirectoryLoader(target_engine)
    loader.ensure_schema()
    return loader


def assert_recorded_unchanged(loader: DirectoryLoader, record: RunRecord) -> None:
    """``record`` was recorded as an unchanged snapshot: nothing written, and it is the newest snapshot."""
    result = loader.record_if_unchanged(record)
    assert result is not None, "the full load was asked for"
    assert (result.status, result.rows_written, result.drift_total) == ("unchanged", 0, 0)
    row = loader.runs.get("wecom_directory_sync", record.run_id)
    assert (row["status"], row["snapshot_digest"], row["users_inserted"], row["drift_total"]) == (
        "unchanged",
        DIGEST,
        0,
        0,
    )
    assert loader.runs.latest_snapshot(CORP) == record.observed_at  # counts as a snapshot for freshness


def test_same_digest_and_untouched_tables_record_an_unchanged_snapshot(loader: DirectoryLoader) -> None:
    load(loader, run("r1", 0))
    with loader.engine.connect() as conn:
        before = conn.execute(text("SELECT * FROM wecom_users ORDER BY userid")).all()
    assert_recorded_unchanged(loader, run("r2", 1))
    with loader.engine.connect() as conn:
        assert conn.execute(text("SELECT * FROM wecom_users ORDER BY userid")).all() == before
    # A chain of unchanged runs keeps comparing with the newest one.
    assert_recorded_unchanged(loader, run("r3", 2))


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (run("r2", 1, digest="e" * 64), "differs"),
        (run("r2", 1, digest=None), "incomplete"),
        (run("r2", -1), "newer than this one"),
        (run("r2", 1, users=3), "the tables hold 2 departments, 2 members and 0 tags where WeCom lists 2, 3 and 0"),
    ],
)
def test_a_different_or_older_snapshot_needs_the_full_load(
    loader: DirectoryLoader, second: RunRecord, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    load(loader, run("r1", 0))
    with caplog.at_level("INFO", logger="wecom.store.loader"):
        assert loader.record_if_unchanged(second) is None
    assert why in caplog.text
    assert loader.runs.get("wecom_directory_sync", "r2") is None


def test_nothing_to_compare_with_before_the_first_complete_load(loader: DirectoryLoader) -> None:
    assert loader.record_if_unchanged(run("r1", 0)) is None
    load(loader, run("r1", 0, digest=None), complete=False)
    assert loader.record_if_unchanged(run("r2", 1)) is None


@pytest.mark.parametrize(
    ("status", "created", "applied"),
    [
        ("pending", 0.5, None),  # a load would supersede or a delta run apply it
        ("failed", -1, None),
        ("applied", 0.5, 0.6),  # a callback changed the tables after the snapshot
        ("applied", -1, 0.5),  # an older event applied late
    ],
)
def test_callback_activity_since_the_snapshot_needs_the_full_load(
    loader: DirectoryLoader, status: str, created: float, applied: float | None
) -> None:
    load(loader, run("r1", 0))
    add_event(loader, status, created, applied)
    assert loader.record_if_unchanged(run("r2", 1)) is None


def test_events_settled_before_the_snapshot_do_not_count(loader: DirectoryLoader) -> None:
    add_event(loader, "applied", -2, -1.5)
    add_event(loader, "superseded", -1, 0)
    add_event(loader, "dead", 0.5)
    load(loader, run("r1", 0))
    assert_recorded_unchanged(loader, run("r2", 1))


def test_a_row_deleted_by_hand_needs_the_full_load(loader: DirectoryLoader) -> None:
    load(loader, run("r1", 0))
    with loader.engine.begin() as conn:
        conn.execute(text("DELETE FROM wecom_users WHERE userid = 'bob'"))
    assert loader.record_if_unchanged(run("r2", 1)) is None


def test_ensure_schema_adds_the_columns_an_older_table_lacks(target_engine: Engine) -> None:
    """The run table as the first version created it: today's, without the columns added since."""
    dialect = target_engine.dialect.name
    create = next(s for s in read_statements("schema/20_sync_runs.sql", dialect) if s.startswith("CREATE TABLE"))
    with target_engine.begin() as conn:
        conn.execute(text(create.replace("snapshot_digest TEXT,", "")))
    DirectoryLoader(target_engine).ensure_schema()
    DirectoryLoader(target_engine).ensure_schema()
    with target_engine.connect() as conn:
        assert conn.execute(text("SELECT snapshot_digest FROM wecom_sync_runs")).all() == []
