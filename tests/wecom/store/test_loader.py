"""The loader on real SQLite and PostgreSQL: merge, no-op re-sync, soft delete, revival, ordering."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from tests.support.snapshots import CORP, T0, membership, snapshot, user
from wecom.errors import MassDeletionError
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import LoadOptions
from wecom.store.run_records import RunRecord
from wecom.store.sql import db_time
from wecom.tables import directory_tables

# These tests delete 1 of 2 members on purpose: the guard has tests of its own.
NO_GUARD = LoadOptions(max_delete_share=1.0)


def load(
    loader: DirectoryLoader,
    tables: dict,
    observed_at: datetime,
    run_id: str,
    complete: bool = True,
    options: LoadOptions = NO_GUARD,
):
    return loader.load_snapshot(
        tables,
        run=RunRecord(dag_id="wecom_directory_sync", run_id=run_id, corp_id=CORP),
        observed_at=observed_at,
        complete=complete,
        options=options,
    )


def rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


@pytest.fixture
def loader(target_engine: Engine) -> DirectoryLoader:
    loader = DirectoryLoader(target_engine)
    loader.ensure_schema()
    loader.ensure_schema()  # idempotent
    return loader


def test_first_load_inserts_everything_and_records_the_run(loader: DirectoryLoader) -> None:
    tables = snapshot(
        [user("alice", "爱丽丝", "h1"), user("bob", "鲍勃", "h2")],
        [membership("alice", 2), membership("bob", 2)],
    )
    result = load(loader, tables, T0, "r1")
    assert result.status == "success"
    assert result.plans["wecom_users"].inserted == 2
    assert result.plans["wecom_departments"].inserted == 2
    assert rows(loader.engine, "SELECT userid, name FROM wecom_users ORDER BY userid") == [
        ("alice", "爱丽丝"),
        ("bob", "鲍勃"),
    ]
    run = loader.runs.get("wecom_directory_sync", "r1")
    assert run["status"] == "success"
    assert (run["users_inserted"], run["departments_inserted"], run["memberships_inserted"]) == (2, 2, 2)


def test_unchanged_resync_writes_no_rows(loader: DirectoryLoader) -> None:
    tables = lambda: snapshot([user("alice", "A", "h1")], [membership("alice", 2)])  # noqa: E731
    load(loader, tables(), T0, "r1")
    before = rows(loader.engine, "SELECT userid, updated_at, last_seen_at FROM wecom_users")
    result = load(loader, tables(), T0 + timedelta(hours=1), "r2")
    assert result.rows_written == 0
    assert all(p.inserted == p.updated == p.deleted == 0 for p in result.plans.values())
    assert rows(loader.engine, "SELECT userid, updated_at, last_seen_at FROM wecom_users") == before


def test_changed_row_is_updated(loader: DirectoryLoader) -> None:
    load(loader, snapshot([user("alice", "A", "h1")], [membership("alice", 2)]), T0, "r1")
    result = load(loader, snapshot([user("alice", "Alice", "h9")], [membership("alice", 2)]), T0 + timedelta(1), "r2")
    assert result.plans["wecom_users"].updated == 1
    assert rows(loader.engine, "SELECT name FROM wecom_users") == [("Alice",)]


def test_missing_member_is_soft_deleted_then_revived(loader: DirectoryLoader) -> None:
    def both() -> dict:
        return snapshot(
            [user("alice", "A", "h1"), user("bob", "B", "h2")], [membership("alice", 2), membership("bob", 2)]
        )

    load(loader, both(), T0, "r1")
    result = load(loader, snapshot([user("alice", "A", "h1")], [membership("alice", 2)]), T0 + timedelta(1), "r2")
    assert result.plans["wecom_users"].deleted == 1
    assert rows(loader.engine, "SELECT userid, is_deleted FROM wecom_users ORDER BY userid") == [
        ("alice", False),
        ("bob", True),
    ]
    assert rows(loader.engine, "SELECT userid FROM wecom_user_departments") == [("alice",)]
    assert rows(loader.engine, "SELECT deleted_at IS NOT NULL FROM wecom_users WHERE userid = 'bob'") == [(True,)]

    result = load(loader, both(), T0 + timedelta(2), "r3")
    assert result.plans["wecom_users"].revived == 1
    assert rows(loader.engine, "SELECT userid, is_deleted, deleted_at FROM wecom_users ORDER BY userid") == [
        ("alice", False, None),
        ("bob", False, None),
    ]


def test_incomplete_snapshot_deletes_nothing(loader: DirectoryLoader) -> None:
    load(
        loader,
        snapshot([user("alice", "A", "h1"), user("bob", "B", "h2")], [membership("alice", 2), membership("bob", 2)]),
        T0,
        "r1",
    )
    result = load(
        loader,
        snapshot([user("alice", "A2", "h3")], [membership("alice", 2)]),
        T0 + timedelta(1),
        "r2",
        complete=False,
    )
    assert result.status == "partial"
    assert rows(loader.engine, "SELECT userid, is_deleted, name FROM wecom_users ORDER BY userid") == [
        ("alice", False, "A2"),
        ("bob", False, "B"),
    ]
    assert len(rows(loader.engine, "SELECT * FROM wecom_user_departments")) == 2
    assert loader.runs.get("wecom_directory_sync", "r2")["status"] == "partial"


def test_older_snapshot_finishing_late_changes_nothing(loader: DirectoryLoader) -> None:
    load(loader, snapshot([user("alice", "New", "h2")], [membership("alice", 2)]), T0 + timedelta(1), "new")
    result = load(loader, snapshot([user("alice", "Old", "h1")], [membership("alice", 2)]), T0, "old")
    assert result.status == "stale"
    assert result.changed_tables() == {}  # so the load emits no asset event
    assert rows(loader.engine, "SELECT name FROM wecom_users") == [("New",)]
    assert loader.runs.get("wecom_directory_sync", "old")["status"] == "stale"


def test_rerun_of_the_same_run_rewrites_its_row(loader: DirectoryLoader) -> None:
    def tables() -> dict:
        return snapshot([user("alice", "A", "h1")], [membership("alice", 2)])

    load(loader, tables(), T0, "r1")
    load(loader, tables(), T0, "r1")
    assert rows(loader.engine, "SELECT COUNT(*) FROM wecom_sync_runs") == [(1,)]
    assert rows(loader.engine, "SELECT COUNT(*) FROM wecom_users") == [(1,)]


def test_membership_moves_and_closure(loader: DirectoryLoader) -> None:
    load(loader, snapshot([user("alice", "A", "h1")], [membership("alice", 2)]), T0, "r1")
    moved = snapshot([user("alice", "A", "h1", main=1)], [membership("alice", 1)])
    result = load(loader, moved, T0 + timedelta(1), "r2")
    assert (
        result.plans["wecom_user_departments"].inserted,
        result.plans["wecom_user_departments"].deleted,
    ) == (1, 1)
    assert rows(loader.engine, "SELECT department_id FROM wecom_user_departments") == [(1,)]
    assert sorted(rows(loader.engine, "SELECT ancestor_id, descendant_id, distance FROM wecom_department_closure")) == [
        (1, 1, 0),
        (1, 2, 1),
        (2, 2, 0),
    ]


def company(n: int, renamed: str | None = None) -> dict:
    """``n`` members u00.. in department 2; ``renamed`` is u00's new name (which changes its hash)."""

    def member(i: int) -> dict:
        if i == 0 and renamed:
            return user("u00", renamed, f"h0-{renamed}")
        return user(f"u{i:02}", f"U{i}", f"h{i}")

    users = [member(i) for i in range(n)]
    return snapshot(users, [membership(u["userid"], 2) for u in users])


def directory_state(engine: Engine) -> list[tuple]:
    return rows(engine, "SELECT userid, name, is_deleted, row_hash FROM wecom_users ORDER BY userid") + rows(
        engine, "SELECT userid, department_id, row_hash FROM wecom_user_departments ORDER BY userid"
    )


def test_history_keeps_every_version_with_its_validity(loader: DirectoryLoader) -> None:
    load(loader, company(3), T0, "r1")
    load(loader, company(3, renamed="Zoe"), T0 + timedelta(1), "r2")
    load(loader, company(2, renamed="Zoe"), T0 + timedelta(2), "r3")
    load(loader, company(3, renamed="Zoe"), T0 + timedelta(3), "r4")
    history = rows(
        loader.engine,
        "SELECT userid, name, valid_from, valid_to, change_source, run_id FROM wecom_users_history "
        "WHERE userid IN ('u00', 'u02') ORDER BY userid, valid_from",
    )
    names = [(h[0], h[1], h[5], h[3] is None) for h in history]
    assert names == [
        ("u00", "U0", "r1", False),
        ("u00", "Zoe", "r2", True),
        ("u02", "U2", "r1", False),  # closed when r3 no longer saw u02
        ("u02", "U2", "r4", True),  # revived: a new version
    ]
    assert {h[4] for h in history} == {"snapshot"}
    memberships = rows(
        loader.engine,
        "SELECT COUNT(*), SUM(CASE WHEN valid_to IS NULL THEN 1 ELSE 0 END) FROM wecom_user_departments_history "
        "WHERE userid = 'u02'",
    )
    assert memberships == [(2, 1)]


def test_unchanged_resync_adds_no_history(loader: DirectoryLoader) -> None:
    load(loader, company(3), T0, "r1")
    load(loader, company(3), T0 + timedelta(1), "r2")
    assert rows(loader.engine, "SELECT COUNT(*) FROM wecom_users_history") == [(3,)]


def test_guard_trips_before_changing_anything(loader: DirectoryLoader) -> None:
    load(loader, company(20), T0, "r1")
    before = directory_state(loader.engine)
    with pytest.raises(MassDeletionError, match=r"10 of 20 users .*allow_mass_delete"):
        load(loader, company(10), T0 + timedelta(1), "r2", options=LoadOptions())
    assert directory_state(loader.engine) == before
    run = loader.runs.get("wecom_directory_sync", "r2")
    assert run["status"] == "guard_tripped"
    assert "10 of 20 users" in run["message"]

    result = load(loader, company(10), T0 + timedelta(1), "r2", options=LoadOptions(allow_mass_delete=True))
    assert result.plans["wecom_users"].deleted == 10
    assert loader.runs.get("wecom_directory_sync", "r2")["status"] == "success"


def test_guard_allows_a_small_share_and_obeys_a_count_limit(loader: DirectoryLoader) -> None:
    load(loader, company(20), T0, "r1")
    assert load(loader, company(19), T0 + timedelta(1), "r2", options=LoadOptions()).status == "success"
    with pytest.raises(MassDeletionError, match="limit 1"):
        load(loader, company(17), T0 + timedelta(2), "r3", options=LoadOptions(max_delete_count=1))


def test_dry_run_records_the_plan_and_changes_nothing(loader: DirectoryLoader) -> None:
    load(loader, company(5), T0, "r1")
    before = directory_state(loader.engine)
    history_before = rows(loader.engine, "SELECT COUNT(*) FROM wecom_users_history")
    result = load(loader, company(4, renamed="Zoe"), T0 + timedelta(1), "dry", options=LoadOptions(dry_run=True))
    assert result.status == "dry_run"
    users = result.plans["wecom_users"]
    assert (users.inserted, users.updated, users.deleted, users.revived) == (0, 1, 1, 0)
    assert users.samples == {"deleted": ["u04"], "updated": ["u00"]}
    assert directory_state(loader.engine) == before
    assert rows(loader.engine, "SELECT COUNT(*) FROM wecom_users_history") == history_before
    run = loader.runs.get("wecom_directory_sync", "dry")
    assert run["status"] == "dry_run"
    assert "a real run would stop here" in run["message"]
    assert json.loads(run["plan"])["wecom_users"]["samples"]["deleted"] == ["u04"]


def test_drift_counts_what_the_snapshot_found_changed(loader: DirectoryLoader) -> None:
    first = load(loader, company(3), T0, "r1")
    assert first.drift is None
    second = load(loader, company(3, renamed="Zoe"), T0 + timedelta(1), "r2")
    assert second.drift["wecom_users"] == {"updated": 1}
    assert loader.runs.get("wecom_directory_sync", "r2")["drift_total"] == 1


def test_pending_callback_events_older_than_the_snapshot_are_superseded(loader: DirectoryLoader) -> None:
    insert = text(
        "INSERT INTO wecom_callback_events (corp_id, dedup_key, received_at, last_received_at, create_time, "
        "change_type, entity_type, entity_id, payload, status) "
        "VALUES (:corp, :key, :t, :t, :t, 'update_user', 'user', 'u00', '{}', 'pending')"
    )
    with loader.engine.begin() as conn:
        for key, at in (("old", T0), ("new", T0 + timedelta(hours=2))):
            conn.execute(insert, {"corp": CORP, "key": key, "t": db_time(at, loader.dialect)})
    load(loader, company(3), T0 + timedelta(hours=1), "r1")
    assert rows(loader.engine, "SELECT dedup_key, status FROM wecom_callback_events ORDER BY dedup_key") == [
        ("new", "pending"),
        ("old", "superseded"),
    ]


def test_a_load_reports_each_table_it_changed_and_a_dry_run_or_an_equal_resync_none(loader: DirectoryLoader) -> None:
    def named(name: str) -> dict:
        return snapshot([user("alice", name, f"h-{name}")], [membership("alice", 2)])

    first = load(loader, named("A"), T0, "r1").changed_tables()
    # every table the snapshot fills, each history with the changes it versions; no direct leaders in it
    filled = set(named("A")) - {"wecom_user_direct_leaders"}
    assert set(first) == {t for t in directory_tables() if t.removesuffix("_history") in filled}
    assert (
        first["wecom_users"]
        == first["wecom_users_history"]
        == {"inserted": 1, "updated": 0, "deleted": 0, "revived": 0}
    )
    assert first["wecom_department_closure"]["inserted"] == 3
    dry = load(loader, named("B"), T0 + timedelta(1), "r2", options=LoadOptions(dry_run=True))
    assert dry.plans["wecom_users"].updated == 1 and dry.changed_tables() == {}
    renamed = load(loader, named("B"), T0 + timedelta(2), "r3").changed_tables()
    assert renamed == {
        "wecom_users": {"inserted": 0, "updated": 1, "deleted": 0, "revived": 0},
        "wecom_users_history": {"inserted": 0, "updated": 1, "deleted": 0, "revived": 0},
    }
    assert load(loader, named("B"), T0 + timedelta(3), "r4").changed_tables() == {}
