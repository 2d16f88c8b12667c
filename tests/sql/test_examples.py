"""The example queries in include/sql/examples/, on history written by real loads (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from tests.support.snapshots import CORP, T0, closure, department, membership, snapshot, tag_tables, user
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import LoadOptions
from wecom.store.run_records import RunRecord
from wecom.store.sql import db_time, read_statement

TREE_CLOSURE = [(1, 1, 0), (2, 2, 0), (3, 3, 0), (1, 2, 1), (1, 3, 1)]
DEPARTMENTS = [
    department(1, 0, "总部", "/1/", 0, "d1"),
    department(2, 1, "研发", "/1/2/", 1, "d2"),
    department(3, 1, "销售", "/1/3/", 1, "d3"),
]


def load(loader: DirectoryLoader, users: list[dict], memberships: list[dict], at: datetime, run_id: str) -> None:
    loader.load_snapshot(
        snapshot(users, memberships, DEPARTMENTS),
        run=RunRecord(dag_id="wecom_directory_sync", run_id=run_id, corp_id=CORP),
        observed_at=at,
        complete=True,
        options=LoadOptions(max_delete_share=1.0),
    )


@pytest.fixture
def history(target_engine: Engine) -> DirectoryLoader:
    """alice: 研发 on day 0, moves to 销售 on day 2; bob joins 研发 on day 1 and leaves on day 3."""
    loader = DirectoryLoader(target_engine)
    loader.ensure_schema()
    alice, bob = user("alice", "Alice", "a1"), user("bob", "Bob", "b1")
    load(loader, [alice], [membership("alice", 2)], T0, "day0")
    load(loader, [alice, bob], [membership("alice", 2), membership("bob", 2)], T0 + timedelta(1), "day1")
    moved = user("alice", "Alice", "a2", main=3)
    load(loader, [moved, bob], [membership("alice", 3), membership("bob", 2)], T0 + timedelta(2), "day2")
    load(loader, [moved], [membership("alice", 3)], T0 + timedelta(3), "day3")
    return loader


def query(loader: DirectoryLoader, name: str, **binds: object) -> list[tuple]:
    with loader.engine.connect() as conn:
        sql = text(read_statement(f"examples/{name}.sql", loader.dialect))
        return [tuple(row) for row in conn.execute(sql, {"corp_id": CORP, **binds})]


def as_of(loader: DirectoryLoader, at: datetime) -> list[tuple]:
    rows = query(loader, "org_chart_as_of", as_of=db_time(at, loader.dialect))
    return [(r[0], r[5]) for r in rows]


def test_org_chart_as_of(history: DirectoryLoader) -> None:
    assert as_of(history, T0 - timedelta(hours=1)) == []
    assert as_of(history, T0 + timedelta(hours=12)) == [(1, None), (2, "alice"), (3, None)]
    assert as_of(history, T0 + timedelta(days=1, hours=12)) == [(1, None), (2, "alice"), (2, "bob"), (3, None)]
    assert as_of(history, T0 + timedelta(days=2, hours=12)) == [(1, None), (2, "bob"), (3, "alice")]
    assert as_of(history, T0 + timedelta(days=3)) == [(1, None), (2, None), (3, "alice")]


def test_member_department_moves(history: DirectoryLoader) -> None:
    moves = [(r[1], r[2], r[3]) for r in query(history, "member_department_moves", userid="alice")]
    assert moves == [("joined", 2, "研发"), ("left", 2, "研发"), ("joined", 3, "销售")]
    bob = [(r[1], r[2]) for r in query(history, "member_department_moves", userid="bob")]
    assert bob == [("joined", 2), ("left", 2)]


def test_tag_members_now_and_as_of(target_engine: Engine) -> None:
    """Tag 7 holds alice directly and department 3 (销售) as a whole: bob holds it once he joins 销售 on day 1,
    alice only through 销售 once she is dropped from the tag on day 2 and moves there."""
    loader = DirectoryLoader(target_engine)
    loader.ensure_schema()
    alice, bob = user("alice", "Alice", "a1"), user("bob", "Bob", "b1")
    days = [
        ([membership("alice", 2), membership("bob", 2)], ["alice"]),
        ([membership("alice", 2), membership("bob", 3)], ["alice"]),
        ([membership("alice", 3), membership("bob", 3)], []),
    ]
    for day, (memberships, direct) in enumerate(days):
        tables = snapshot([alice, bob], memberships, DEPARTMENTS) | tag_tables({7: "安全员"}, {7: direct}, {7: [3]})
        tables["wecom_department_closure"] = [pd.DataFrame([closure(a, d, n) for a, d, n in TREE_CLOSURE])]
        loader.load_snapshot(
            tables,
            run=RunRecord(dag_id="wecom_directory_sync", run_id=f"day{day}", corp_id=CORP),
            observed_at=T0 + timedelta(day),
            complete=True,
            tags_listed=True,
            options=LoadOptions(max_delete_share=1.0),
        )

    def as_of(at: datetime) -> list[tuple]:
        rows = query(loader, "tag_members_as_of", tag_id=7, as_of=db_time(at, loader.dialect))
        return [(r[2], r[3], r[4]) for r in rows]

    assert as_of(T0 - timedelta(hours=1)) == []
    assert as_of(T0 + timedelta(hours=1)) == [("alice", "member", None)]
    assert as_of(T0 + timedelta(days=1, hours=1)) == [("alice", "member", None), ("bob", "department", 3)]
    assert as_of(T0 + timedelta(days=2, hours=1)) == [("alice", "department", 3), ("bob", "department", 3)]
    with loader.engine.connect() as conn:
        now = conn.execute(text("SELECT userid, via, via_department_id FROM wecom_tag_members_expanded ORDER BY 1"))
        assert [tuple(row) for row in now] == [("alice", "department", 3), ("bob", "department", 3)]
