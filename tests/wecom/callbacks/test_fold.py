"""The pure fold: events -> versions per entity, absent is not empty, grouping by the latest userid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from wecom.callbacks.fold import Event, Gone, fold_department, fold_user, group_users, merge_present, named_departments
from wecom.callbacks.writer_departments import cycle_members
from wecom.errors import EventApplyError

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
_ids = count(1)
STORED = {
    "userid": "li",
    "name": "Li",
    "mobile": "13800000000",
    "email": "li@example.com",
    "position": "Engineer",
    "department": [2, 3],
    "order": [10, 20],
    "is_leader_in_dept": [1, 0],
    "direct_leader": ["boss"],
}


def event(change_type: str, seconds: int, status: str = "pending", **payload: object) -> Event:
    entity = "user" if change_type.endswith("_user") else "department"
    entity_id = str(payload.get("UserID", payload.get("Id", "")))
    new = payload.get("NewUserID")
    return Event(
        event_id=next(_ids),
        status=status,
        attempts=0,
        create_time=T0 + timedelta(seconds=seconds),
        change_type=change_type,
        entity_type=entity,
        entity_id=entity_id,
        new_entity_id=str(new) if new else None,
        payload={k: str(v) for k, v in payload.items()},
    )


def test_an_ids_only_move_replaces_the_memberships_and_keeps_every_other_field() -> None:
    versions, said_leaders = fold_user(
        "li", dict(STORED), False, [event("update_user", 5, UserID="li", Department="3,4")], None
    )
    [(_, state)] = versions
    assert state == STORED | {"department": [3, 4], "order": [20, None], "is_leader_in_dept": [0, None]}
    assert said_leaders is True


def test_a_fetched_answer_without_contact_fields_keeps_them() -> None:
    answer = {"userid": "li", "name": "Li Lei", "department": [3], "position": "Lead"}
    versions, _ = fold_user("li", dict(STORED), False, [event("update_user", 5, UserID="li", Department="3")], answer)
    [(_, state)] = versions
    assert state["name"] == "Li Lei" and state["position"] == "Lead"
    assert (state["mobile"], state["email"], state["direct_leader"]) == ("13800000000", "li@example.com", ["boss"])
    assert (state["department"], state["order"], state["is_leader_in_dept"]) == ([3], [20], [0])


def test_a_field_present_but_empty_clears_it() -> None:
    assert merge_present(STORED, {"mobile": ""})["mobile"] == ""


def test_an_ids_only_create_of_a_new_member_holds_only_what_it_carries() -> None:
    versions, _ = fold_user("new", None, False, [event("create_user", 5, UserID="new", Department="2")], None)
    assert versions[0][1] == {"userid": "new", "department": [2], "order": [None], "is_leader_in_dept": [None]}


def test_a_create_of_a_member_known_alive_starts_from_what_is_known() -> None:
    versions, _ = fold_user("li", dict(STORED), False, [event("create_user", 5, UserID="li", Department="2")], None)
    assert versions[0][1]["name"] == "Li" and versions[0][1]["mobile"] == "13800000000"
    revived, _ = fold_user("li", dict(STORED), True, [event("create_user", 5, UserID="li", Department="2")], None)
    assert "name" not in revived[0][1]


def test_gone_deletes_and_says_the_member_leads_nothing() -> None:
    assert fold_user("li", dict(STORED), False, [event("update_user", 5, UserID="li")], Gone()) == (
        [(T0 + timedelta(seconds=5), None)],
        True,
    )


def test_malformed_lists_are_entity_errors_without_member_data() -> None:
    with pytest.raises(EventApplyError, match="Department holds a non-numeric entry"):
        fold_user("li", None, False, [event("create_user", 5, UserID="li", Department="2,x")], None)
    with pytest.raises(EventApplyError, match="IsLeaderInDept does not align"):
        fold_user("li", None, False, [event("create_user", 5, UserID="li", Department="2", IsLeaderInDept="1,0")], None)


def test_an_ids_only_party_event_creates_or_moves_and_keeps_the_name() -> None:
    state, _ = fold_department(None, False, [event("create_party", 5, Id=7, ParentId=1)], None)
    assert state == {"parentid": 1, "order": None}
    stored = {"id": 7, "name": "Sales", "name_en": None, "parentid": 1, "order": 3}
    moved, _ = fold_department(stored, False, [event("update_party", 6, Id=7, ParentId=2)], None)
    assert moved == stored | {"parentid": 2}
    fetched, _ = fold_department(stored, False, [event("update_party", 6, Id=7, ParentId=2)], {"id": 7, "parentid": 2})
    assert fetched["name"] == "Sales"


def test_events_are_grouped_under_the_latest_userid_whatever_order_the_renames_came_in() -> None:
    early = event("update_user", 1, UserID="a", Position="P")
    a_to_b = event("update_user", 2, UserID="a", NewUserID="b")
    b_to_c = event("update_user", 3, UserID="b", NewUserID="c", status="applied")
    late = event("update_user", 4, UserID="c", Alias="x")
    [group] = group_users([late, b_to_c, early, a_to_b], [b_to_c, a_to_b])
    assert group.key == "c"
    assert [e.event_id for e in group.events] == [early.event_id, a_to_b.event_id, b_to_c.event_id, late.event_id]
    assert group.replaying is True


def test_a_rename_loop_does_not_hang_the_grouping() -> None:
    there = event("update_user", 1, UserID="a", NewUserID="b")
    back = event("update_user", 2, UserID="b", NewUserID="a")
    assert {g.key for g in group_users([there, back], [there, back])} == {"a"}


def test_named_departments_and_cycles() -> None:
    assert named_departments([event("create_user", 1, UserID="u", Department="2, 3"), event("delete_user", 2)]) == {
        2,
        3,
    }
    assert cycle_members({1: 0, 2: 3, 3: 2, 4: 2, 5: 1}) == {2, 3}
    assert cycle_members({1: 0, 2: 1}) == set()
