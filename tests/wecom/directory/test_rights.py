"""What a run could not see, and when that makes it degraded: pure rules, no database."""

from __future__ import annotations

from wecom.directory.rights import FieldTally, Rights, advice, judge, newly_lost, restored

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


def test_a_company_that_never_had_the_rights_is_limited_not_degraded() -> None:
    first = judge(CONTACT, None)
    assert not first.degraded
    assert not judge(CONTACT, first).degraded


def test_losing_rights_degrades_until_they_come_back_and_alerts_once_per_loss() -> None:
    full = judge({}, None)
    app = judge(CONTACT, full)
    assert app.lost == {"member_contact"} and newly_lost(app, full) == ["member_contact"]
    again = judge(CONTACT, app)
    assert again.degraded and newly_lost(again, app) == []
    ids = judge(IDS_ONLY, again)
    assert ids.lost == set(IDS_ONLY) and newly_lost(ids, again) == ["department_details", "member_details"]
    back = judge({}, ids)
    assert not back.degraded and restored(back, ids) == sorted(IDS_ONLY)


def test_partial_recovery_keeps_the_remaining_loss() -> None:
    ids = judge(IDS_ONLY, judge({}, None))
    app = judge(CONTACT, ids)
    assert app.lost == {"member_contact"} and restored(app, ids) == ["department_details", "member_details"]


def test_rights_round_trip_through_a_run_row() -> None:
    rights = Rights(IDS_ONLY, frozenset({"member_contact"}))
    assert Rights.from_row(rights.row_values()) == rights
    assert Rights.from_row(Rights().row_values()) == Rights()


def test_advice_speaks_the_admin_consoles_terms_and_knows_an_explicit_ids_strategy() -> None:
    text = advice(["member_details", "department_details"], "ids", "export: ... errcode 48009; using ids")
    assert "trusted IPs" in text and "48009" in text
    assert "set it to 'auto'" in advice(["member_details"], "ids", "chosen explicitly")
    assert "contact-sync assistant's secret" in advice(["member_contact"], "list", "list is the cheapest allowed")
