"""Placing callback members against the department scope: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime

from wecom.callbacks.scope_placement import MemberPlacement, department_parents, outside_reason
from wecom.scope import Scope

SCOPE = Scope.from_option({"include": [2]})
T1, T2, T3 = (datetime(2026, 11, 2, 9, m, tzinfo=UTC) for m in (1, 2, 3))


def test_a_department_is_outside_when_stored_so_or_not_placed_inside_by_the_tree() -> None:
    placement = MemberPlacement(SCOPE, {2: False, 4: False, 7: True}, {9: 2, 3: 1})
    assert [placement.outside(d) for d in (2, 4, 7)] == [False, False, True]
    assert placement.outside(9) is False, "not stored yet, but WeCom's tree puts it in the scope"
    assert placement.outside(3) is True and placement.outside(99) is True, "unknown: every in-scope one is stored"


def test_versions_keep_their_in_scope_memberships_and_a_version_without_one_is_an_exit() -> None:
    placement = MemberPlacement(SCOPE, {2: False, 4: False, 3: True}, {})
    versions = [
        (T1, {"userid": "u", "department": [2, 3], "order": [20, 30], "is_leader_in_dept": [1, 0]}),
        (T2, {"userid": "u", "department": [3]}),
        (T3, None),
    ]
    placed, exits = placement.restrict(versions)
    assert placed == [
        (T1, {"userid": "u", "department": [2], "order": [20], "is_leader_in_dept": [1]}),
        (T2, None),
        (T3, None),
    ]
    assert exits == {T2}, "a deletion is no exit"
    assert placement.restrict([(T1, {"userid": "u"})]) == ([(T1, None)], frozenset({T1}))


def test_parents_come_from_the_tables_then_wecoms_tree_then_the_batch() -> None:
    stored = {"2": {"parent_id": 1}, "4": {"parent_id": 2}, "5": {"parent_id": None}}
    assert department_parents(stored, {4: 3, 6: 4}, {6: 2}) == {2: 1, 4: 3, 6: 2}


def test_the_reason_names_the_departments_and_the_scope() -> None:
    reason = outside_reason("member u in", [9, 3, 8, 7, 6, 5], SCOPE)
    assert reason == (
        "member u in (3, 5, 6, 7, 8, ...) outside the company's department scope "
        "(the subtrees of department(s) 2): recorded, not applied"
    )
