"""What a run could not see, and when that makes it degraded: pure rules, no database."""

from __future__ import annotations

import pytest

from wecom.directory.rights import (
    FieldTally,
    Rights,
    advice,
    describe,
    judge,
    newly_lost,
    restored,
)

CONTACT = {"member_contact": 30}
IDS_ONLY = {"member_contact": 30, "member_details": 30, "department_details": 6}


def test_tally_counts_records_that_carry_none_of_a_groups_fields() -> None:
    tally = FieldTally()
    users, departments = tally.observer("users"), tally.observer("departments")
    users({"userid": "a", "name": "A", "mobile": "1"})
    users({"userid": "b", "name": "B"})
    users({"userid": "c", "department": [1]})
    departments({"id": 1, "parentid": 0, "order": 1})
    departments({"id": 2, "parentid": 1, "name": "研发"})
    assert tally.as_dict() == {"member_contact": 2, "member_details": 1, "department_details": 1}


def snapshot(previous: Rights | None, withheld: dict[str, int], members: int = 30, departments: int = 6) -> Rights:
    return judge(withheld, {"users": members, "departments": departments}, previous)


def test_a_company_that_never_had_the_rights_is_limited_not_degraded() -> None:
    first = snapshot(None, CONTACT)
    assert not first.degraded and first.unreadable == {"member_contact"}
    assert not snapshot(first, CONTACT).degraded


def test_losing_a_group_that_one_member_lacked_before_degrades_the_run_and_alerts_once() -> None:
    """The issue's case: 29 of 30 members carried contact fields, then none does (a new app's secret)."""
    full = snapshot(None, {"member_contact": 1})
    assert not full.degraded and full.unreadable == set()
    app = snapshot(full, CONTACT)
    assert app.lost == {"member_contact"} and newly_lost(app, full) == ["member_contact"]
    again = snapshot(app, CONTACT)
    assert again.degraded and newly_lost(again, app) == []
    back = snapshot(again, {"member_contact": 1})
    assert not back.degraded and restored(back, again) == ["member_contact"]


def test_a_member_who_hides_their_details_is_no_loss_of_rights() -> None:
    full = snapshot(None, {})
    hidden = snapshot(full, {"member_contact": 1})
    assert not hidden.degraded and hidden.unreadable == set() and newly_lost(hidden, full) == []


@pytest.mark.parametrize(
    ("readable_before", "readable_now", "lost"),
    [
        (30, 0, True),
        (15, 1, True),  # half before (MATERIAL_SHARE, 50%), 1 of 30 now: at most NONE_SHARE (5%)
        (15, 2, False),  # 2 of 30 is more than NONE_SHARE: a drop, not a loss
        (14, 0, False),  # under half before: too few to tell rights from members' own gaps
        (30, 15, False),
    ],
)
def test_the_thresholds_of_a_loss(readable_before: int, readable_now: int, lost: bool) -> None:
    before = snapshot(None, {"member_contact": 30 - readable_before})
    assert snapshot(before, {"member_contact": 30 - readable_now}).degraded == lost


def test_losing_rights_degrades_until_they_come_back_and_alerts_once_per_loss() -> None:
    full = snapshot(None, {})
    app = snapshot(full, CONTACT)
    assert app.lost == {"member_contact"} and newly_lost(app, full) == ["member_contact"]
    again = snapshot(app, CONTACT)
    assert again.degraded and newly_lost(again, app) == []
    ids = snapshot(again, IDS_ONLY)
    assert ids.lost == set(IDS_ONLY) and newly_lost(ids, again) == ["department_details", "member_details"]
    back = snapshot(ids, {})
    assert not back.degraded and restored(back, ids) == sorted(IDS_ONLY)


def test_partial_recovery_keeps_the_remaining_loss() -> None:
    ids = snapshot(snapshot(None, {}), IDS_ONLY)
    app = snapshot(ids, CONTACT)
    assert app.lost == {"member_contact"} and restored(app, ids) == ["department_details", "member_details"]


def test_a_run_without_members_keeps_the_loss_it_cannot_judge() -> None:
    lost = snapshot(snapshot(None, {}), CONTACT)
    empty = snapshot(lost, {}, members=0)
    assert empty.lost == {"member_contact"} and restored(empty, lost) == []


def test_a_row_without_record_counts_judges_any_lacking_record_as_unreadable() -> None:
    """Rows and kinds without a ``<kind>_seen`` count: a group is readable only if no record lacked it."""
    older = Rights.from_row({"withheld_fields": None, "degraded": None})
    assert older.readable_share("member_contact") == 1.0
    assert judge(CONTACT, {}, older).lost == {"member_contact"}
    assert judge({"member_contact": 1}, {}, older).lost == {"member_contact"}


def test_rights_round_trip_through_a_run_row() -> None:
    rights = Rights(IDS_ONLY, frozenset({"member_contact"}))
    assert Rights.from_row(rights.row_values()) == rights
    assert Rights.from_row(Rights().row_values()) == Rights()
    row = rights.row_values() | {"users_seen": 30, "departments_seen": 6, "tags_seen": 4}
    assert Rights.from_row(row).records == {"users": 30, "departments": 6, "tags": 4}


def test_advice_speaks_the_admin_consoles_terms_and_knows_an_explicit_ids_strategy() -> None:
    text = advice(["member_details", "department_details"], "ids", "export: ... errcode 48009; using ids")
    assert "trusted IPs" in text and "48009" in text
    assert "set it to 'auto'" in advice(["member_details"], "ids", "chosen explicitly")
    assert "contact-sync assistant's secret" in advice(["member_contact"], "list", "list is the cheapest allowed")


def test_refused_tags_are_a_group_of_their_own() -> None:
    tally = FieldTally()
    tally.observer("users")({"userid": "a", "name": "A", "mobile": "1"})
    assert tally.as_dict() == {}, "tags are counted by the tag walk, never from member records"
    assert describe({"tags": 3, "member_contact": 30}) == "member_contact (30 members), tags (3 tag answers)"
    text = advice(["tags"], "ids", "chosen explicitly")
    assert "tag/list or tag/get" in text and "set it to 'auto'" not in text, "explicit ids does not hide tags"
    read = Rights({}, records={"tags": 12})
    refused_list = judge({"tags": 1}, {"tags": None}, read)
    assert refused_list.lost == {"tags"} and newly_lost(refused_list, read) == ["tags"]
    refused_gets = judge({"tags": 12}, {"tags": 12}, read)
    assert refused_gets.lost == {"tags"}, "every tag/get refused loses the group"
    assert judge({"tags": 1}, {"tags": 12}, read).lost == frozenset(), "one tag outside the range is no loss"
    assert judge({"tags": 1}, {"tags": None}, None).lost == frozenset(), "never read: limited, not degraded"
