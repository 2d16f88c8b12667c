"""The loader on real SQLite and PostgreSQL: merge, no-op re-sync, soft delete, revival, ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from wecom.loader import DirectoryLoader, RunRecord

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CORP = "wwcorp"


def department(dept_id: int, parent: int, name: str, path: str, depth: int, digest: str) -> dict:
    return {
        "corp_id": CORP,
        "department_id": dept_id,
        "name": name,
        "name_en": None,
        "parent_id": parent,
        "sort_order": 100,
        "path": path,
        "depth": depth,
        "row_hash": digest,
    }


def user(userid: str, name: str, digest: str, main: int = 2) -> dict:
    return {
        "corp_id": CORP,
        "userid": userid,
        "name": name,
        "alias": None,
        "position": "工程师",
        "gender": 1,
        "mobile": None,
        "email": f"{userid}@example.com",
        "biz_mail": None,
        "telephone": None,
        "address": None,
        "status": 1,
        "main_department_id": main,
        "avatar_url": None,
        "open_userid": None,
        "external_position": None,
        "extattr": '{"attrs":[]}',
        "row_hash": digest,
    }


def membership(userid: str, dept: int, main: bool = True) -> dict:
    return {
        "corp_id": CORP,
        "userid": userid,
        "department_id": dept,
        "sort_order": 5,
        "is_leader": False,
        "is_main": main,
        "row_hash": f"{userid}-{dept}-{main}",
    }


def closure(ancestor: int, descendant: int, distance: int) -> dict:
    return {"corp_id": CORP, "ancestor_id": ancestor, "descendant_id": descendant, "distance": distance}


def snapshot(users: list[dict], memberships: list[dict], departments: list[dict] | None = None) -> dict:
    departments = departments or [
        department(1, 0, "总部", "/1/", 0, "d1"),
        department(2, 1, "研发", "/1/2/", 1, "d2"),
    ]
    closures = [closure(1, 1, 0), closure(2, 2, 0), closure(1, 2, 1)]
    frames = {
        "wecom_departments": departments,
        "wecom_users": users,
        "wecom_user_departments": memberships,
        "wecom_department_leaders": [{"corp_id": CORP, "department_id": 2, "userid": users[0]["userid"]}],
        "wecom_user_direct_leaders": [],
        "wecom_department_closure": closures,
    }
    return {name: [pd.DataFrame(rows)] if rows else [] for name, rows in frames.items()}


def load(loader: DirectoryLoader, tables: dict, observed_at: datetime, run_id: str, complete: bool = True):
    return loader.load_snapshot(
        tables,
        run=RunRecord(dag_id="wecom_directory_sync", run_id=run_id, corp_id=CORP),
        observed_at=observed_at,
        complete=complete,
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
    run = loader.get_run("wecom_directory_sync", "r1")
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
    assert loader.get_run("wecom_directory_sync", "r2")["status"] == "partial"


def test_older_snapshot_finishing_late_changes_nothing(loader: DirectoryLoader) -> None:
    load(loader, snapshot([user("alice", "New", "h2")], [membership("alice", 2)]), T0 + timedelta(1), "new")
    result = load(loader, snapshot([user("alice", "Old", "h1")], [membership("alice", 2)]), T0, "old")
    assert result.status == "stale"
    assert rows(loader.engine, "SELECT name FROM wecom_users") == [("New",)]
    assert loader.get_run("wecom_directory_sync", "old")["status"] == "stale"


def test_rerun_of_the_same_run_rewrites_its_row(loader: DirectoryLoader) -> None:
    tables = lambda: snapshot([user("alice", "A", "h1")], [membership("alice", 2)])  # noqa: E731
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
