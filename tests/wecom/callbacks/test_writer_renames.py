"""Renames (update_user with NewUserID): atomic, idempotent, in any order, never a lost member."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.wecom.callbacks.support import (
    apply,
    full_sync,
    load_snapshot,
    rows,
    seed_tree,
    statuses,
    store,
    truthy,
)
from wecom.api.client import WeComClient
from wecom.callbacks.writer_renames import NEW_USERID_TAKEN
from wecom_simulator.testing import RunningSimulator


def live(engine: Engine) -> list[str]:
    return [u for (u, deleted) in rows(engine, "SELECT userid, is_deleted FROM wecom_users") if not truthy(deleted)]


def history(engine: Engine, userid: str) -> list[tuple]:
    sql = "SELECT name, position, valid_to IS NULL FROM wecom_users_history WHERE userid = :u ORDER BY valid_from"
    return [(name, position, truthy(current)) for name, position, current in rows(engine, sql, u=userid)]


def test_a_rename_moves_the_member_its_links_leader_references_and_history(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="boss", Name="Boss", Department="2", IsLeaderInDept="1")
    store(engine, "create_user", 11, UserID="worker", Name="W", Department="2", DirectLeader="boss")
    apply(engine)
    store(engine, "update_user", 20, UserID="boss", NewUserID="chief")
    store(engine, "update_user", 21, UserID="chief", Position="CEO")
    apply(engine)
    assert sorted(live(engine)) == ["chief", "worker"]
    assert rows(engine, "SELECT userid, is_deleted FROM wecom_users WHERE userid = 'boss'") in (
        [("boss", True)],
        [("boss", 1)],
    )
    assert rows(engine, "SELECT userid FROM wecom_user_departments ORDER BY userid") == [("chief",), ("worker",)]
    assert rows(engine, "SELECT userid FROM wecom_department_leaders") == [("chief",)]
    assert rows(engine, "SELECT leader_userid FROM wecom_user_direct_leaders") == [("chief",)]
    assert history(engine, "boss") == []
    assert history(engine, "chief") == [("Boss", None, False), ("Boss", None, False), ("Boss", "CEO", True)]
    links = rows(engine, "SELECT userid, valid_to IS NULL FROM wecom_user_departments_history WHERE department_id = 2")
    assert sorted((u, truthy(o)) for u, o in links) == [("chief", False), ("chief", True), ("worker", True)]

    store(engine, "update_user", 15, UserID="boss", Alias="late")
    apply(engine)
    assert rows(engine, "SELECT userid, alias FROM wecom_users WHERE NOT is_deleted AND userid = 'chief'") == [
        ("chief", "late")
    ]
    assert sorted(live(engine)) == ["chief", "worker"]


def test_a_rename_retried_after_a_failed_fetch_keeps_the_member(
    engine: Engine, sim: RunningSimulator, client: WeComClient
) -> None:
    full_sync(engine, client, seconds=0)
    old = sorted(sim.state.org.users)[2]
    member = rows(engine, "SELECT name, mobile, row_hash FROM wecom_users WHERE userid = :u", u=old)
    links = rows(engine, "SELECT department_id FROM wecom_user_departments WHERE userid = :u", u=old)
    sim.state.update_user(old, {"new_userid": f"{old}_v2"})
    sim.add_fault("user/get", errcode=-1, times=None, match={"userid": f"{old}_v2"})
    store(engine, "update_user", 10, UserID=old, NewUserID=f"{old}_v2", Department="1")

    first = apply(engine, client=client)
    assert first.events["failed"] == 1
    assert rows(engine, "SELECT name, mobile, row_hash FROM wecom_users WHERE userid = :u", u=old) == member
    assert rows(engine, "SELECT department_id FROM wecom_user_departments WHERE userid = :u", u=old) == links
    assert rows(engine, "SELECT COUNT(*) FROM wecom_users WHERE userid = :u", u=f"{old}_v2") == [(0,)]

    sim.state.clear_faults()
    second = apply(engine, client=client)
    assert second.events["applied"] == 1 and statuses(engine) == {"applied": 1}
    assert f"{old}_v2" in live(engine) and old not in live(engine)
    assert rows(engine, "SELECT name, mobile FROM wecom_users WHERE userid = :u", u=f"{old}_v2") == [member[0][:2]]
    assert len(history(engine, f"{old}_v2")) == 2 and history(engine, old) == []

    store(engine, "update_user", 12, UserID=old, NewUserID=f"{old}_v2", Department="1")  # delivered again, later
    again = apply(engine, client=client)
    assert again.events["applied"] == 1 and (again.users.inserted, again.users.deleted) == (0, 0)
    assert f"{old}_v2" in live(engine) and old not in live(engine)
    assert len(history(engine, f"{old}_v2")) == 2


def test_a_rename_chain_delivered_backwards_ends_with_one_live_member(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="a", Name="Ann", Mobile="13800000001", Department="2")
    apply(engine)
    store(engine, "update_user", 30, UserID="b", NewUserID="c")
    apply(engine)
    store(engine, "update_user", 20, UserID="a", NewUserID="b", Position="Lead")
    apply(engine)
    assert statuses(engine) == {"applied": 7}
    assert live(engine) == ["c"]
    assert rows(engine, "SELECT name, mobile, position FROM wecom_users WHERE userid = 'c'") == [
        ("Ann", "13800000001", "Lead")
    ]
    assert rows(engine, "SELECT department_id FROM wecom_user_departments") == [(2,)]
    assert [h[:2] for h in history(engine, "c")] == [("Ann", None), ("Ann", "Lead"), ("Ann", "Lead")]
    assert history(engine, "a") == history(engine, "b") == []


def test_a_rename_chain_in_one_batch(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="a", Name="Ann", Department="2")
    apply(engine)
    store(engine, "update_user", 30, UserID="b", NewUserID="c")
    store(engine, "update_user", 20, UserID="a", NewUserID="b")
    apply(engine)
    assert live(engine) == ["c"] and rows(engine, "SELECT name FROM wecom_users WHERE userid = 'c'") == [("Ann",)]


def test_a_new_userid_another_live_member_holds_waits_then_is_dead(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="x", Name="X", Department="2")
    store(engine, "create_user", 11, UserID="y", Name="Y", Department="3")
    store(engine, "create_user", 12, UserID="z", Name="Z", Department="3")
    apply(engine)
    before = rows(engine, "SELECT * FROM wecom_users ORDER BY userid")
    store(engine, "update_user", 20, UserID="x", NewUserID="y")
    store(engine, "update_user", 21, UserID="z", Position="Fine")
    first = apply(engine, max_attempts=2)
    assert first.events == {"applied": 1, "superseded": 0, "failed": 1, "dead": 0, "out_of_scope": 0}
    assert apply(engine, max_attempts=2).events["dead"] == 1
    assert rows(engine, "SELECT last_error FROM wecom_callback_events WHERE status = 'dead'") == [(NEW_USERID_TAKEN,)]
    assert [r for r in rows(engine, "SELECT * FROM wecom_users ORDER BY userid") if r[1] != "z"] == [
        r for r in before if r[1] != "z"
    ]


def test_a_rename_onto_a_userid_whose_deletion_arrives_later_is_applied(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="x", Name="X", Department="2")
    store(engine, "create_user", 11, UserID="y", Name="Y", Department="3")
    apply(engine)
    store(engine, "update_user", 30, UserID="x", NewUserID="y")
    assert apply(engine).events["failed"] == 1
    store(engine, "delete_user", 20, UserID="y")
    assert apply(engine).events["applied"] == 2
    assert live(engine) == ["y"] and rows(engine, "SELECT name FROM wecom_users WHERE userid = 'y'") == [("X",)]
    # Both members' pasts stay under the reused userid; the open version is the renamed member's.
    assert sorted(h[0] for h in history(engine, "y")) == ["X", "X", "Y"]
    assert [h[0] for h in history(engine, "y") if h[2]] == ["X"]


def test_a_rename_racing_a_full_sync_ends_with_one_live_member(engine: Engine) -> None:
    root = {"id": 1, "name": "Root", "parentid": 0, "order": 1}
    ann = {"userid": "ann", "name": "Ann", "department": [1], "mobile": "13800000001"}
    load_snapshot(engine, [root], [ann], seconds=0, run_id="full1")
    store(engine, "update_user", 20, UserID="ann", NewUserID="anna")
    apply(engine)
    # A snapshot observed before the rename finishes after it: the tombstone keeps "ann" from coming back.
    load_snapshot(engine, [root], [ann], seconds=10, run_id="full2")
    assert live(engine) == ["anna"]
    assert rows(engine, "SELECT name, mobile FROM wecom_users WHERE userid = 'anna'") == [("Ann", "13800000001")]
    # One observed after the rename agrees.
    load_snapshot(engine, [root], [ann | {"userid": "anna"}], seconds=30, run_id="full3")
    assert live(engine) == ["anna"] and len(history(engine, "anna")) == 2


def test_a_rename_applied_after_a_newer_snapshot_is_superseded_and_loses_nothing(engine: Engine) -> None:
    root = {"id": 1, "name": "Root", "parentid": 0, "order": 1}
    ann = {"userid": "ann", "name": "Ann", "department": [1]}
    load_snapshot(engine, [root], [ann], seconds=0, run_id="full1")
    load_snapshot(engine, [root], [ann | {"userid": "anna"}], seconds=30, run_id="full2")
    store(engine, "update_user", 20, UserID="ann", NewUserID="anna")
    assert apply(engine).events["superseded"] == 1
    assert live(engine) == ["anna"] and history(engine, "ann") == [("Ann", None, False)]
