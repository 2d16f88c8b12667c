"""Applying stored callbacks on real SQLite and PostgreSQL: folding, ordering, renames, fetches, failures, history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from wecom.callback_events import parse_event, store_event
from wecom.client import WeComClient
from wecom.deltas import DeltaApplier
from wecom.loader import DirectoryLoader, RunRecord
from wecom.pii import PiiPolicy
from wecom.ratelimit import RateLimits
from wecom.simulator.org import generate_org
from wecom.simulator.testing import RunningSimulator, running_simulator
from wecom.sql import db_time, parse_db_time, read_statement
from wecom.transform import transform_departments, transform_users

CORP = "wwdeltas"
SECRET = "deltas-secret-value"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
_runs = count()


def at(seconds: int) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp())


def event_xml(change_type: str, create_time: int, corp: str = CORP, **fields: object) -> str:
    body = "".join(f"<{tag}><![CDATA[{value}]]></{tag}>" for tag, value in fields.items())
    return (
        f"<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[{change_type}]]></ChangeType>{body}</xml>"
    )


def store(engine: Engine, change_type: str, seconds: int, corp: str = CORP, **fields: object) -> None:
    xml = event_xml(change_type, at(seconds), corp, **fields)
    store_event(engine, corp, parse_event(xml), xml, datetime.now(UTC))


def apply(engine: Engine, corp: str = CORP, client: WeComClient | None = None, **options: object):
    run = RunRecord(dag_id="wecom_callback_deltas", run_id=f"run{next(_runs)}", corp_id=corp, kind="delta")
    return DeltaApplier(engine, client, **options).apply(run)


def rows(engine: Engine, sql: str, **params: object) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def statuses(engine: Engine) -> dict[str, int]:
    return dict(rows(engine, "SELECT status, COUNT(*) FROM wecom_callback_events GROUP BY status"))


def directory(engine: Engine, corp: str = CORP) -> dict[str, list[tuple]]:
    """Every current table of a corp, without bookkeeping columns."""
    tables = {
        "wecom_users": "userid, name, position, status, main_department_id, row_hash, is_deleted",
        "wecom_departments": "department_id, name, parent_id, path, depth, row_hash, is_deleted",
        "wecom_user_departments": "userid, department_id, sort_order, is_leader, is_main, row_hash",
        "wecom_department_leaders": "department_id, userid",
        "wecom_user_direct_leaders": "userid, leader_userid",
        "wecom_department_closure": "ancestor_id, descendant_id, distance",
    }
    return {t: sorted(rows(engine, f"SELECT {c} FROM {t} WHERE corp_id = :c", c=corp)) for t, c in tables.items()}


@pytest.fixture
def engine(target_engine: Engine) -> Engine:
    DirectoryLoader(target_engine).ensure_schema()
    return target_engine


def seed_tree(engine: Engine, corp: str = CORP) -> None:
    """Root 1 with 2 and 3 under it, 4 under 2."""
    store(engine, "create_party", 1, corp, Id=1, Name="Root", ParentId=0, Order=1)
    store(engine, "create_party", 2, corp, Id=2, Name="Sales", ParentId=1, Order=2)
    store(engine, "create_party", 3, corp, Id=3, Name="R&D", ParentId=1, Order=3)
    store(engine, "create_party", 4, corp, Id=4, Name="East", ParentId=2, Order=4)


def test_events_of_one_member_fold_into_the_row_a_full_sync_would_write(engine: Engine) -> None:
    seed_tree(engine)
    store(
        engine,
        "create_user",
        10,
        UserID="zhangsan",
        Name="张三",
        Department="2,3",
        MainDepartment=2,
        IsLeaderInDept="1,0",
        Position="Engineer",
        Gender=1,
        Status=1,
        Email="z@example.com",
    )
    store(engine, "update_user", 11, UserID="zhangsan", Position="Manager")
    store(engine, "update_user", 12, UserID="zhangsan", Department="3,4", MainDepartment=4)
    result = apply(engine)
    assert result.events == {"applied": 7, "superseded": 0, "failed": 0, "dead": 0}
    assert (result.users.inserted, result.departments.inserted, result.memberships.inserted) == (1, 4, 2)
    assert statuses(engine) == {"applied": 7}

    expected_users, expected_links, _ = transform_users(
        pd.DataFrame(
            [
                {
                    "userid": "zhangsan",
                    "name": "张三",
                    "department": [3, 4],
                    "is_leader_in_dept": [0, None],
                    "main_department": 4,
                    "position": "Manager",
                    "gender": "1",
                    "status": 1,
                    "email": "z@example.com",
                }
            ]
        ),
        CORP,
    )
    assert rows(engine, "SELECT row_hash, position FROM wecom_users") == [(expected_users.row_hash[0], "Manager")]
    assert sorted(rows(engine, "SELECT department_id, row_hash FROM wecom_user_departments")) == sorted(
        zip(expected_links.department_id.tolist(), expected_links.row_hash.tolist(), strict=True)
    )
    departments, _, closure = transform_departments(
        pd.DataFrame(
            {
                "id": [1, 2, 3, 4],
                "name": ["Root", "Sales", "R&D", "East"],
                "parentid": [0, 1, 1, 2],
                "order": [1, 2, 3, 4],
            }
        ),
        CORP,
    )
    assert sorted(rows(engine, "SELECT department_id, path, row_hash FROM wecom_departments")) == sorted(
        zip(departments.department_id, departments.path, departments.row_hash, strict=True)
    )
    assert len(rows(engine, "SELECT * FROM wecom_department_closure")) == len(closure)
    run = rows(engine, "SELECT kind, status, users_inserted, observed_at FROM wecom_sync_runs")[0]
    assert run[:3] == ("delta", "success", 1)

    store(engine, "update_user", 13, UserID="zhangsan", Position="Manager")
    again = apply(engine)
    assert (again.users.updated, again.memberships.updated, again.events["applied"]) == (0, 0, 1)


def test_out_of_order_arrival_converges_to_in_order(engine: Engine) -> None:
    events = [
        ("create_party", 1, {"Id": 1, "Name": "Root", "ParentId": 0, "Order": 1}),
        ("create_party", 2, {"Id": 2, "Name": "A", "ParentId": 1, "Order": 1}),
        ("create_party", 3, {"Id": 3, "Name": "B", "ParentId": 1, "Order": 2}),
        ("create_party", 4, {"Id": 4, "Name": "C", "ParentId": 2, "Order": 1}),
        ("create_user", 5, {"UserID": "u1", "Name": "One", "Department": "2", "MainDepartment": 2, "Status": 1}),
        ("create_user", 6, {"UserID": "u2", "Name": "Two", "Department": "4", "DirectLeader": "u1"}),
        ("update_user", 7, {"UserID": "u1", "Position": "Lead"}),
        ("update_party", 8, {"Id": 2, "ParentId": 3}),
        ("update_user", 9, {"UserID": "u1", "Name": "One Renamed"}),
        ("update_user", 10, {"UserID": "u2", "Department": "2,4", "IsLeaderInDept": "1,0"}),
        ("delete_user", 11, {"UserID": "u1"}),
        ("update_party", 12, {"Id": 4, "Name": "C2"}),
    ]
    for change_type, seconds, fields in events:
        store(engine, change_type, seconds, "wwinorder", **fields)
    apply(engine, "wwinorder")

    late = {"update_user7", "update_party8", "create_user6"}
    for change_type, seconds, fields in events:
        if f"{change_type}{seconds}" not in late:
            store(engine, change_type, seconds, "wwshuffled", **fields)
    apply(engine, "wwshuffled")
    for change_type, seconds, fields in reversed(events):
        if f"{change_type}{seconds}" in late:
            store(engine, change_type, seconds, "wwshuffled", **fields)
            apply(engine, "wwshuffled")
    assert directory(engine, "wwshuffled") == directory(engine, "wwinorder")
    assert rows(engine, "SELECT path FROM wecom_departments WHERE corp_id = 'wwinorder' AND department_id = 4") == [
        ("/1/3/2/4/",)
    ]


def test_an_older_event_does_not_overwrite_newer_state(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="u", Name="U", Department="2", Position="Old")
    store(engine, "update_user", 20, UserID="u", Position="Newest")
    apply(engine)
    store(engine, "update_user", 15, UserID="u", Position="Middle", Alias="ali")
    apply(engine)
    assert rows(engine, "SELECT position, alias FROM wecom_users") == [("Newest", "ali")]
    history = rows(engine, "SELECT position, alias, valid_from, valid_to FROM wecom_users_history ORDER BY valid_from")
    assert [h[:2] for h in history] == [("Old", None), ("Middle", "ali"), ("Newest", "ali")]
    assert [h[3] for h in history[:2]] == [h[2] for h in history[1:]] and history[2][3] is None


def test_rename_moves_the_key_everywhere(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="boss", Name="Boss", Department="2", IsLeaderInDept="1")
    store(engine, "create_user", 11, UserID="worker", Name="W", Department="2", DirectLeader="boss")
    apply(engine)
    assert rows(engine, "SELECT department_id, userid FROM wecom_department_leaders") == [(2, "boss")]
    store(engine, "update_user", 20, UserID="boss", NewUserID="chief")
    store(engine, "update_user", 21, UserID="chief", Position="CEO")
    apply(engine)
    assert rows(engine, "SELECT userid, position FROM wecom_users ORDER BY userid") == [
        ("chief", "CEO"),
        ("worker", None),
    ]
    assert rows(engine, "SELECT userid FROM wecom_user_departments ORDER BY userid") == [("chief",), ("worker",)]
    assert rows(engine, "SELECT userid FROM wecom_department_leaders") == [("chief",)]
    assert rows(engine, "SELECT leader_userid FROM wecom_user_direct_leaders") == [("chief",)]
    assert rows(engine, "SELECT valid_to IS NULL FROM wecom_users_history WHERE userid = 'boss'") in (
        [(False,)],
        [(0,)],
    )

    store(engine, "update_user", 15, UserID="boss", Alias="late")
    apply(engine)
    assert rows(engine, "SELECT userid, alias FROM wecom_users WHERE userid = 'chief'") == [("chief", "late")]
    assert rows(engine, "SELECT COUNT(*) FROM wecom_users WHERE userid = 'boss'") == [(0,)]


def test_delete_soft_deletes_and_create_revives(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="u", Name="U", Department="2,3")
    store(engine, "delete_party", 11, Id=4)
    apply(engine)
    store(engine, "delete_user", 20, UserID="u")
    deleted = apply(engine)
    assert (deleted.users.deleted, deleted.memberships.deleted) == (1, 2)
    assert rows(engine, "SELECT is_deleted, deleted_at IS NOT NULL FROM wecom_users") in ([(True, True)], [(1, 1)])
    assert rows(engine, "SELECT COUNT(*) FROM wecom_user_departments") == [(0,)]
    assert rows(engine, "SELECT is_deleted FROM wecom_departments WHERE department_id = 4") in ([(True,)], [(1,)])
    assert rows(engine, "SELECT COUNT(*) FROM wecom_department_closure WHERE descendant_id = 4") == [(0,)]

    store(engine, "create_user", 30, UserID="u", Name="U again", Department="3")
    revived = apply(engine)
    assert revived.users.revived == 1
    assert rows(engine, "SELECT name, is_deleted FROM wecom_users") in ([("U again", False)], [("U again", 0)])
    history = rows(engine, "SELECT name, valid_to IS NULL FROM wecom_users_history ORDER BY valid_from")
    assert [(name, bool(open_)) for name, open_ in history] == [("U", False), ("U again", True)]
    links = rows(engine, "SELECT department_id, valid_to IS NULL FROM wecom_user_departments_history")
    assert sorted((d, bool(o)) for d, o in links) == [(2, False), (3, False), (3, True)]


@pytest.mark.parametrize("status", ["success", "unchanged"])
def test_events_covered_by_a_complete_snapshot_are_superseded(engine: Engine, status: str) -> None:
    seed_tree(engine)
    apply(engine)
    loader = DirectoryLoader(engine)
    with engine.begin() as conn:
        loader.record_run(
            conn,
            RunRecord("wecom_directory_sync", "full1", CORP),
            status=status,
            observed_at=T0 + timedelta(seconds=50.5),
            finished_at=T0 + timedelta(seconds=60),
        )
    store(engine, "update_party", 40, Id=2, Name="Old news")
    store(engine, "update_party", 50, Id=4, Name="Same second")
    store(engine, "update_party", 70, Id=3, Name="Fresh")
    result = apply(engine)
    assert (result.events["superseded"], result.events["applied"]) == (1, 2)
    assert rows(engine, "SELECT name FROM wecom_departments WHERE department_id > 1 ORDER BY department_id") == [
        ("Sales",),
        ("Fresh",),
        ("Same second",),
    ]


def test_tag_events_are_ignored(engine: Engine) -> None:
    store(engine, "update_tag", 1, TagId=7, AddUserItems="a,b")
    applier = DeltaApplier(engine)
    assert applier.count_ready(CORP) == 0
    assert apply(engine).events == {"applied": 0, "superseded": 0, "failed": 0, "dead": 0}
    assert statuses(engine) == {"ignored": 1}


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=3, members=30, departments=6), corp_id=CORP, secret=SECRET) as sim:
        yield sim


def client_for(sim: RunningSimulator) -> WeComClient:
    return WeComClient(sim.base_url, CORP, SECRET, max_retries=0, limits=RateLimits(None, None))


def test_ids_only_events_are_completed_from_wecom(engine: Engine, sim: RunningSimulator) -> None:
    userids = sorted(sim.state.org.users)[:3]
    for userid in userids:
        store(engine, "create_user", 5, UserID=userid, Department="1")
    store(engine, "create_party", 5, Id=2, ParentId=1)
    with client_for(sim) as client:
        result = apply(engine, client=client)
        expected = [client.user_get(u) for u in userids]
    assert result.events["applied"] == 4
    assert result.api_calls["user/get"] == 3
    users, links, _ = transform_users(pd.DataFrame(expected), CORP)
    assert sorted(rows(engine, "SELECT userid, row_hash FROM wecom_users")) == sorted(
        zip(users.userid, users.row_hash, strict=True)
    )
    assert len(rows(engine, "SELECT * FROM wecom_user_departments")) == len(links)
    name = sim.state.org.departments[2].name
    assert rows(engine, "SELECT name FROM wecom_departments WHERE department_id = 2") == [(name,)]


def test_a_member_gone_from_wecom_is_soft_deleted(engine: Engine, sim: RunningSimulator) -> None:
    store(engine, "create_user", 5, UserID="ghost", Name="Ghost", Department="1")
    apply(engine)
    store(engine, "update_user", 6, UserID="ghost", Department="1")
    with client_for(sim) as client:
        result = apply(engine, client=client)
    assert result.users.deleted == 1
    assert rows(engine, "SELECT is_deleted FROM wecom_users") in ([(True,)], [(1,)])


def test_a_failing_event_is_retried_then_dead_without_blocking_others(engine: Engine, sim: RunningSimulator) -> None:
    victim = sorted(sim.state.org.users)[0]
    sim.add_fault("user/get", errcode=48002, times=None, match={"userid": victim})
    store(engine, "create_user", 5, UserID=victim, Department="1")
    store(engine, "create_user", 6, UserID="fine", Name="Fine", Department="1")
    with client_for(sim) as client:
        first = apply(engine, client=client, max_attempts=2)
        assert first.events == {"applied": 1, "superseded": 0, "failed": 1, "dead": 0}
        assert DeltaApplier(engine, max_attempts=2).count_ready(CORP) == 1
        second = apply(engine, client=client, max_attempts=2)
        assert second.events == {"applied": 0, "superseded": 0, "failed": 0, "dead": 1}
    assert statuses(engine) == {"applied": 1, "dead": 1}
    error, attempts = rows(engine, "SELECT last_error, attempts FROM wecom_callback_events WHERE status = 'dead'")[0]
    assert attempts == 2 and "48002" in error and victim not in error and SECRET not in error
    assert rows(engine, "SELECT status FROM wecom_sync_runs ORDER BY finished_at")[-1] == ("partial",)


def test_contact_fields_are_stored_in_the_company_pii_form_once(engine: Engine) -> None:
    policy = PiiPolicy.from_option({"mobile": "hash", "email": "drop"}, "pepper")
    store(engine, "create_user", 10, UserID="p", Name="P", Department="1", Mobile="13800000000", Email="p@x.cn")
    apply(engine, pii=policy)
    store(engine, "update_user", 11, UserID="p", Position="Chef")
    apply(engine, pii=policy)
    users, _, _ = transform_users(
        pd.DataFrame(
            [
                {
                    "userid": "p",
                    "name": "P",
                    "department": [1],
                    "mobile": "13800000000",
                    "email": "p@x.cn",
                    "position": "Chef",
                }
            ]
        ),
        CORP,
        policy,
    )
    assert rows(engine, "SELECT mobile, email, row_hash FROM wecom_users") == [
        (users.mobile[0], None, users.row_hash[0])
    ]
    assert users.mobile[0] != "13800000000"
    assert rows(engine, "SELECT COUNT(*) FROM wecom_users_history WHERE mobile = '13800000000'") == [(0,)]


def test_within_one_second_creation_comes_before_change_and_deletion(engine: Engine) -> None:
    store(engine, "delete_party", 5, Id=9)
    store(engine, "update_party", 5, Id=9, Name="Renamed")
    store(engine, "create_party", 5, Id=9, Name="Brief", ParentId=0, Order=1)
    assert apply(engine).departments.inserted == 0
    assert rows(engine, "SELECT name, is_deleted FROM wecom_departments") in ([("Renamed", True)], [("Renamed", 1)])


def test_rerunning_an_apply_changes_nothing(engine: Engine) -> None:
    seed_tree(engine)
    run = RunRecord(dag_id="wecom_callback_deltas", run_id="cleared", corp_id=CORP, kind="delta")
    assert DeltaApplier(engine).apply(run).events["applied"] == 4
    before = rows(engine, "SELECT * FROM wecom_sync_runs"), directory(engine)
    assert DeltaApplier(engine).apply(run).events["applied"] == 0
    assert (rows(engine, "SELECT * FROM wecom_sync_runs"), directory(engine)) == before


def test_snapshots_and_callbacks_share_one_history(engine: Engine) -> None:
    """A full sync, then callbacks (one arriving late), then a full sync that agrees: one consistent history."""
    raw_departments = pd.DataFrame(
        {"id": [1, 2, 3], "name": ["Root", "Sales", "R&D"], "parentid": [0, 1, 1], "order": [1, 2, 3]}
    )

    def full_sync(position: str, department: int, seconds: int, run_id: str) -> None:
        departments, leaders, closure = transform_departments(raw_departments, CORP)
        raw_user = {"userid": "li", "name": "Li", "department": [department], "main_department": department}
        users, links, direct = transform_users(pd.DataFrame([raw_user | {"position": position}]), CORP)
        frames = {
            "wecom_departments": departments,
            "wecom_department_leaders": leaders,
            "wecom_department_closure": closure,
            "wecom_users": users,
            "wecom_user_departments": links,
            "wecom_user_direct_leaders": direct,
        }
        DirectoryLoader(engine).load_snapshot(
            {name: [frame] for name, frame in frames.items()},
            run=RunRecord("wecom_directory_sync", run_id, CORP),
            observed_at=T0 + timedelta(seconds=seconds),
            complete=True,
        )

    full_sync("Engineer", 2, 0, "full1")
    store(engine, "update_user", 20, UserID="li", Department="3", MainDepartment=3)
    apply(engine)
    store(engine, "update_user", 10, UserID="li", Position="Lead")  # arrives late
    apply(engine)
    full_sync("Lead", 3, 30, "full2")  # agrees with the callbacks: nothing to write

    history = rows(
        engine,
        "SELECT position, main_department_id, change_source, valid_from, valid_to "
        "FROM wecom_users_history ORDER BY valid_from",
    )
    assert [h[:3] for h in history] == [("Engineer", 2, "snapshot"), ("Lead", 2, "callback"), ("Lead", 3, "callback")]
    assert [h[4] for h in history[:-1]] == [h[3] for h in history[1:]] and history[-1][4] is None
    with engine.connect() as conn:
        moves_sql = text(read_statement("examples/member_department_moves.sql", engine.dialect.name))
        moves = [tuple(r)[:3] for r in conn.execute(moves_sql, {"corp_id": CORP, "userid": "li"})]
    at20 = parse_db_time(db_time(T0 + timedelta(seconds=20), engine.dialect.name))
    assert [(parse_db_time(t), move, dept) for t, move, dept in moves] == [
        (T0, "joined", 2),
        (at20, "left", 2),
        (at20, "joined", 3),
    ]
    assert rows(engine, "SELECT drift_total FROM wecom_sync_runs WHERE run_id = 'full2'") == [(0,)]
