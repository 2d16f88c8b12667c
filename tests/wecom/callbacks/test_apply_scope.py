"""Callbacks under a department scope: what leaves it is applied as out_of_scope, what stays outside is set
aside with a reason, what comes in is created (from its event, completed by a fetch where allowed)."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.wecom.callbacks.support import (
    apply,
    load_snapshot,
    rows,
    statuses,
    store,
    truthy,
)
from wecom.api.client import WeComClient
from wecom.scope import Scope
from wecom_simulator.testing import RunningSimulator

#   1 ── 2 (the scope) ── 4, 5
#   └─── 3 (outside)
SCOPE = Scope.from_option({"include": [2]})
DEPARTMENTS = [
    {"id": 2, "name": "Sales", "parentid": 1, "order": 1},
    {"id": 4, "name": "East", "parentid": 2, "order": 1},
    {"id": 5, "name": "West", "parentid": 2, "order": 2},
]
# A full sync of the scope stages only in-scope memberships: c also sits in 3, outside.
MEMBERS = [
    {"userid": "a", "name": "A", "department": [2]},
    {"userid": "b", "name": "B", "department": [4]},
    {"userid": "c", "name": "C", "department": [4]},
    {"userid": "d", "name": "D", "department": [5]},
]


def user_row(engine: Engine, userid: str) -> tuple:
    return rows(engine, "SELECT is_deleted, out_of_scope FROM wecom_users WHERE userid = :u", u=userid)[0]


def test_callbacks_leave_enter_and_stay_outside_the_scope(engine: Engine) -> None:
    load_snapshot(engine, DEPARTMENTS, MEMBERS, 0, "full1", tops=(2,))
    assert rows(engine, "SELECT path FROM wecom_departments WHERE department_id = 4") == [("/2/4/",)]
    store(engine, "update_user", 10, UserID="c", Department="3")  # c leaves the scope
    store(engine, "update_user", 11, UserID="e", Department="3", Position="Outside")  # stays outside
    store(engine, "create_user", 12, UserID="f", Name="F", Department="3")  # created outside
    store(engine, "update_user", 13, UserID="b", Department="4,3")  # keeps only 4
    store(engine, "create_party", 14, Id=9, Name="Lab", ParentId=3, Order=1)  # a department outside
    store(engine, "update_party", 15, Id=5, ParentId=3)  # 5 leaves with d, its only member
    store(engine, "update_user", 16, UserID="g", Name="G", Department="2")  # g comes into the scope
    store(engine, "update_party", 17, Id=3, Name="R&D renamed")  # a department outside, renamed

    result = apply(engine, scope=SCOPE)

    assert result.events == {"applied": 4, "superseded": 0, "failed": 0, "dead": 0, "out_of_scope": 4}
    assert statuses(engine) == {"applied": 4, "out_of_scope": 4}
    reasons = dict(
        rows(engine, "SELECT entity_id, last_error FROM wecom_callback_events WHERE status = 'out_of_scope'")
    )
    assert set(reasons) == {"e", "f", "9", "3"}
    assert reasons["e"] == (
        "member e in (3) outside the company's department scope (the subtrees of department(s) 2): "
        "recorded, not applied"
    )
    assert reasons["9"].startswith("department 9 under (3) outside")
    assert (result.users.left_scope, result.departments.left_scope, result.users.deleted) == (2, 1, 0)
    assert (result.users.inserted, result.departments.deleted) == (1, 0)

    assert [tuple(map(truthy, user_row(engine, u))) for u in "cd"] == [(True, True), (True, True)]
    assert tuple(map(truthy, user_row(engine, "g"))) == (False, False)
    assert rows(engine, "SELECT COUNT(*) FROM wecom_users WHERE userid IN ('e', 'f')") == [(0,)]
    assert rows(engine, "SELECT COUNT(*) FROM wecom_departments WHERE department_id IN (3, 9)") == [(0,)]
    left = rows(engine, "SELECT is_deleted, out_of_scope FROM wecom_departments WHERE department_id = 5")
    assert [tuple(map(truthy, r)) for r in left] == [(True, True)]
    department_history = (
        "SELECT ended_by FROM wecom_departments_history WHERE department_id = 5 AND valid_to IS NOT NULL"
    )
    assert rows(engine, department_history) == [("out_of_scope",)]
    memberships = rows(engine, "SELECT userid, department_id FROM wecom_user_departments ORDER BY userid")
    assert memberships == [("a", 2), ("b", 4), ("g", 2)]
    ended = rows(
        engine,
        "SELECT userid, ended_by FROM wecom_users_history WHERE valid_to IS NOT NULL ORDER BY userid",
    )
    assert ended == [("c", "out_of_scope"), ("d", "out_of_scope")]
    ended_links = rows(
        engine,
        "SELECT userid, department_id, ended_by FROM wecom_user_departments_history "
        "WHERE valid_to IS NOT NULL ORDER BY userid",
    )
    assert ended_links == [("c", 4, "out_of_scope"), ("d", 5, "out_of_scope")]
    run = rows(
        engine,
        "SELECT users_left_scope, departments_left_scope, users_deleted, message FROM wecom_sync_runs "
        "WHERE kind = 'delta'",
    )[0]
    assert run[:3] == (2, 1, 0) and "4 out_of_scope" in run[3]

    # Back into the scope: c is revived from its event, its memberships restored.
    store(engine, "update_user", 20, UserID="c", Department="4")
    again = apply(engine, scope=SCOPE)
    assert (again.users.revived, again.events["applied"]) == (1, 1)
    assert tuple(map(truthy, user_row(engine, "c"))) == (False, False)


def test_the_whole_company_applies_every_event(engine: Engine) -> None:
    load_snapshot(engine, [{"id": 1, "name": "Root", "parentid": 0, "order": 1}, *DEPARTMENTS], MEMBERS, 0, "f")
    store(engine, "create_party", 10, Id=3, Name="R&D", ParentId=1, Order=3)
    store(engine, "update_user", 11, UserID="c", Department="3")
    assert apply(engine).events["out_of_scope"] == 0
    assert rows(engine, "SELECT department_id FROM wecom_user_departments WHERE userid = 'c'") == [(3,)]


def test_a_member_moving_into_the_scope_is_completed_by_a_fetch(
    engine: Engine, sim: RunningSimulator, client: WeComClient
) -> None:
    org = sim.state.org
    outside = next(m for m in org.member_list() if 1 not in m.department)
    top = next(d for d in sorted(org.departments) if d not in outside.department and d != 1)
    scope = Scope.from_option({"include": [top]})
    inside = set(org.subtree_ids(top))
    stored = [dict(d, parentid=d["parentid"]) for d in client.department_list() if d["id"] in inside]
    load_snapshot(engine, stored, [], 0, "full1", tops=(top,))
    sim.state.update_user(outside.userid, {"department": [top]})
    store(engine, "update_user", 10, UserID=outside.userid, Department=str(top))  # ids-only form
    stranger = next(m for m in org.member_list() if not inside & set(m.department))
    store(engine, "update_user", 11, UserID=stranger.userid, Department=",".join(map(str, stranger.department)))

    result = apply(engine, client=client, scope=scope)

    assert result.events["applied"] == 1 and result.events["out_of_scope"] == 1
    assert result.api_calls.get("user/get") == 2, "both may be entering: WeCom says which"
    name, position = org.profile(org.user(outside.userid))["name"], org.profile(org.user(outside.userid))["position"]
    assert rows(engine, "SELECT name, position FROM wecom_users WHERE userid = :u", u=outside.userid) == [
        (name, position or None)
    ]
    assert rows(engine, "SELECT department_id FROM wecom_user_departments WHERE userid = :u", u=outside.userid) == [
        (top,)
    ]


def test_tag_events_keep_only_members_and_departments_in_the_scope(engine: Engine) -> None:
    """Tags are company-wide; the tables hold their members and departments in the scope only."""
    load_snapshot(engine, DEPARTMENTS, MEMBERS, 0, "full1", tops=(2,))
    store(engine, "create_user", 5, UserID="x", Name="X", Department="3")  # outside: set aside, not stored
    store(engine, "update_tag", 10, TagId=7, AddUserItems="a,x", AddPartyItems="4,3")
    store(engine, "update_tag", 11, TagId=7, AddUserItems="x", AddPartyItems="3")  # nothing in the scope
    store(engine, "update_tag", 12, TagId=8, AddUserItems="b,c,d", AddPartyItems="5")

    result = apply(engine, scope=SCOPE)

    assert statuses(engine) == {"applied": 2, "out_of_scope": 2}
    reason = rows(
        engine, "SELECT last_error FROM wecom_callback_events WHERE status = 'out_of_scope' AND entity_id = '7'"
    )
    assert reason == [
        ("tag event naming only members and departments outside the company's department scope: recorded, not applied",)
    ]
    members = "SELECT tag_id, userid FROM wecom_tag_users ORDER BY tag_id, userid"
    departments = "SELECT tag_id, department_id FROM wecom_tag_departments ORDER BY tag_id, department_id"
    assert rows(engine, members) == [(7, "a"), (8, "b"), (8, "c"), (8, "d")]
    assert rows(engine, departments) == [(7, 4), (8, 5)]
    assert result.run_counts()["tag_members_inserted"] == 6

    store(engine, "update_user", 20, UserID="c", Department="3")  # c leaves the scope, and its tags
    store(engine, "update_party", 21, Id=5, ParentId=3)  # 5 leaves with d, its only member
    assert apply(engine, scope=SCOPE).run_counts()["users_left_scope"] == 2
    assert rows(engine, members) == [(7, "a"), (8, "b")]
    assert rows(engine, departments) == [(7, 4)]
    ended = "SELECT userid FROM wecom_tag_users_history WHERE ended_by = 'out_of_scope' ORDER BY userid"
    assert rows(engine, ended) == [("c",), ("d",)]
    ended = "SELECT department_id FROM wecom_tag_departments_history WHERE ended_by = 'out_of_scope'"
    assert rows(engine, ended) == [(5,)]
