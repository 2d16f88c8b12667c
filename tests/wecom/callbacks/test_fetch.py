"""Completing ids-only member events: per member while they fit one round of calls, by department past it."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Engine

from tests.wecom.callbacks.support import apply, full_sync, rows, statuses, store
from wecom.api.client import WeComClient
from wecom.callbacks.fetch import RECORDS_PER_CALL, plan_user_lists
from wecom_simulator.testing import RunningSimulator


def test_no_department_is_read_while_the_members_fit_one_round_of_calls() -> None:
    waiting = {f"u{i}": {7} for i in range(4)}
    assert plan_user_lists(waiting, {}, max_workers=4) == {}
    assert plan_user_lists(waiting, {}, max_workers=3) == {7: ["u0", "u1", "u2", "u3"]}


def test_each_member_goes_to_its_most_shared_department_and_a_lone_one_is_asked_alone() -> None:
    waiting = {"a": {1, 2}, "b": {2}, "c": {2, 3}, "d": {4}, "e": set()}
    assert plan_user_lists(waiting, {}, max_workers=1) == {2: ["a", "b", "c"]}


def test_a_large_department_is_not_read_for_a_few_members() -> None:
    waiting = {"a": {1}, "b": {1}, "c": {1}}
    assert plan_user_lists(waiting, {1: 2 * RECORDS_PER_CALL}, max_workers=1) == {1: ["a", "b", "c"]}
    assert plan_user_lists(waiting, {1: 3 * RECORDS_PER_CALL}, max_workers=1) == {}


def members_by_department(sim: RunningSimulator) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for userid, member in sorted(sim.state.org.users.items()):
        found[member.department[0]].append(userid)
    return found


def test_a_backlog_of_ids_only_events_is_read_by_department_with_the_same_result(
    engine: Engine, sim: RunningSimulator, client: WeComClient
) -> None:
    full_sync(engine, client, seconds=0)
    department, userids = max(members_by_department(sim).items(), key=lambda item: len(item[1]))
    assert len(userids) >= 3
    for userid in userids:
        sim.state.update_user(userid, {"position": f"Fetched {userid}"})
    moved = userids[0]  # named in its event's department, but WeCom moved it on since
    other = next(d for d in sim.state.org.departments if d != department)
    sim.state.update_user(moved, {"department": [other], "is_leader_in_dept": [0], "order": [0]})
    for second, userid in enumerate(userids):
        store(engine, "update_user", 10 + second, UserID=userid, Department=str(department))
    before = dict(client.api_calls)
    apply(engine, client=client, max_workers=2)
    calls = {k: v - before.get(k, 0) for k, v in client.api_calls.items() if v != before.get(k, 0)}
    assert calls == {"user/list": 1, "user/get": 1}  # the moved member is asked after all
    assert statuses(engine) == {"applied": len(userids)}
    stored = dict(rows(engine, "SELECT userid, position FROM wecom_users"))
    assert all(stored[u] == f"Fetched {u}" for u in userids)
    assert rows(engine, "SELECT department_id FROM wecom_user_departments WHERE userid = :u", u=moved) == [(other,)]


def test_a_department_whose_list_fails_leaves_its_members_to_user_get(
    engine: Engine, sim: RunningSimulator, client: WeComClient
) -> None:
    full_sync(engine, client, seconds=0)
    department, userids = max(members_by_department(sim).items(), key=lambda item: len(item[1]))
    sim.add_fault("user/list", errcode=60011, times=None, match={"department_id": str(department)})
    for userid in userids:
        sim.state.update_user(userid, {"position": "Fetched"})
    for second, userid in enumerate(userids):
        store(engine, "update_user", 10 + second, UserID=userid, Department=str(department))
    before = dict(client.api_calls)
    apply(engine, client=client, max_workers=2)
    assert client.api_calls["user/get"] - before.get("user/get", 0) == len(userids)
    assert statuses(engine) == {"applied": len(userids)}
    assert {p for (p,) in rows(engine, "SELECT position FROM wecom_users WHERE position = 'Fetched'")} == {"Fetched"}
