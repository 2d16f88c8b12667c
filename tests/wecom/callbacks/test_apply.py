"""The orchestrator on real SQLite and PostgreSQL: folding, ordering, fetches, failures, history, runs."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from tests.wecom.callbacks.support import (
    CORP,
    SECRET,
    T0,
    apply,
    directory,
    rows,
    seed_tree,
    statuses,
    store,
)
from wecom.api.client import WeComClient
from wecom.callbacks.apply import DeltaApplier
from wecom.callbacks.queue import count_ready
from wecom.directory.pii import PiiPolicy
from wecom.directory.transform import transform_departments, transform_users
from wecom.store.loader import DirectoryLoader
from wecom.store.run_records import RunRecord
from wecom.store.sql import db_time, parse_db_time, read_statement
from wecom_simulator.testing import RunningSimulator


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
    assert result.events == {"applied": 7, "superseded": 0, "failed": 0, "dead": 0, "out_of_scope": 0}
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
        loader.runs.record(
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


def test_ids_only_events_are_completed_from_wecom(engine: Engine, sim: RunningSimulator, client: WeComClient) -> None:
    userids = sorted(sim.state.org.users)[:3]
    for userid in userids:
        store(engine, "create_user", 5, UserID=userid, Department="1")
    store(engine, "create_party", 5, Id=2, ParentId=1)
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


def test_a_member_gone_from_wecom_is_soft_deleted(engine: Engine, sim: RunningSimulator, client: WeComClient) -> None:
    store(engine, "create_party", 0, Id=1, Name="Root", ParentId=0, Order=1)
    store(engine, "create_user", 5, UserID="ghost", Name="Ghost", Department="1")
    apply(engine)
    store(engine, "update_user", 6, UserID="ghost", Department="1")
    result = apply(engine, client=client)
    assert result.users.deleted == 1
    assert rows(engine, "SELECT is_deleted FROM wecom_users") in ([(True,)], [(1,)])


def test_a_failing_event_is_retried_then_dead_without_blocking_others(
    engine: Engine, sim: RunningSimulator, client: WeComClient
) -> None:
    victim = sorted(sim.state.org.users)[0]
    sim.add_fault("user/get", errcode=-1, times=None, match={"userid": victim})
    store(engine, "create_party", 0, Id=1, Name="Root", ParentId=0, Order=1)
    store(engine, "create_user", 5, UserID=victim, Department="1")
    store(engine, "create_user", 6, UserID="fine", Name="Fine", Department="1")
    first = apply(engine, client=client, max_attempts=2)
    assert first.events == {"applied": 2, "superseded": 0, "failed": 1, "dead": 0, "out_of_scope": 0}
    assert count_ready(engine, CORP, max_attempts=2) == 1
    second = apply(engine, client=client, max_attempts=2)
    assert second.events == {"applied": 0, "superseded": 0, "failed": 0, "dead": 1, "out_of_scope": 0}
    assert statuses(engine) == {"applied": 2, "dead": 1}
    error, attempts = rows(engine, "SELECT last_error, attempts FROM wecom_callback_events WHERE status = 'dead'")[0]
    assert attempts == 2 and "errcode -1" in error and victim not in error and SECRET not in error
    assert rows(engine, "SELECT status FROM wecom_sync_runs ORDER BY finished_at")[-1] == ("partial",)


def test_contact_fields_are_stored_in_the_company_pii_form_once(engine: Engine) -> None:
    policy = PiiPolicy.from_option({"mobile": "hash", "email": "drop"}, "pepper")
    store(engine, "create_party", 0, Id=1, Name="Root", ParentId=0, Order=1)
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


def test_an_apply_counts_each_table_it_changed_once_and_a_rerun_none(engine: Engine) -> None:
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
    )
    run = RunRecord(dag_id="wecom_callback_deltas", run_id="counted", corp_id=CORP, kind="delta")
    changed = DeltaApplier(engine).apply(run).changed_tables()
    inserted = lambda n: {"inserted": n, "updated": 0, "deleted": 0, "revived": 0}  # noqa: E731
    assert changed == {
        "wecom_departments": inserted(4),
        "wecom_departments_history": inserted(4),
        "wecom_users": inserted(1),
        "wecom_users_history": inserted(1),
        "wecom_user_departments": inserted(2),
        "wecom_user_departments_history": inserted(2),
        "wecom_department_leaders": inserted(1),
        "wecom_department_closure": inserted(8),  # four self rows, 1-2, 1-3, 1-4, 2-4
    }
    assert DeltaApplier(engine).apply(run).changed_tables() == {}
    store(engine, "update_user", 20, UserID="zhangsan", Position="Manager")
    moved = apply(engine).changed_tables()
    assert moved == {
        "wecom_users": {"inserted": 0, "updated": 1, "deleted": 0, "revived": 0},
        "wecom_users_history": {"inserted": 0, "updated": 1, "deleted": 0, "revived": 0},
    }
