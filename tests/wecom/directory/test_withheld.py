"""Which fields an answer withheld, and filling them from stored rows: pure pandas, no database."""

from __future__ import annotations

import pandas as pd

from wecom.directory.transform import row_hash, transform_departments, transform_users, withheld_leader_departments
from wecom.directory.withheld import WITHHELD, WITHHOLDABLE, bit, fill_withheld, mark_departments, mark_users

CORP = "wwcorp"
FULL = {
    "userid": "zhangsan",
    "name": "张三",
    "department": [2],
    "order": [5],
    "is_leader_in_dept": [1],
    "main_department": 2,
    "position": "工程师",
    "mobile": "13800000000",
    "gender": "1",
    "email": "zs@example.com",
    "direct_leader": ["lisi"],
}


def users(*records: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, set[int]]:
    raw = pd.DataFrame.from_records(list(records))
    members, memberships, leaders = transform_users(raw, CORP)
    members, memberships, unsure = mark_users(raw, members, memberships, pd.Index([2]))
    return members, memberships, leaders, unsure


def withheld_names(table: str, mask: int) -> set[str]:
    return {name for name in WITHHOLDABLE[table] if mask & bit(table, name)}


def test_exactly_the_fields_an_answer_lacks_are_withheld() -> None:
    members, memberships, _, unsure = users(FULL)
    lacking = {name for name, field in WITHHOLDABLE["wecom_users"].items() if field not in FULL}
    assert withheld_names("wecom_users", int(members[WITHHELD].iloc[0])) == lacking
    assert "alias" in lacking and "mobile" not in lacking
    assert memberships[WITHHELD].tolist() == [0]
    assert unsure == set()


def test_a_present_empty_value_is_not_withheld() -> None:
    members, _, _, _ = users(FULL | {"mobile": "", "direct_leader": []})
    assert not members[WITHHELD].iloc[0] & bit("wecom_users", "mobile")
    assert not members[WITHHELD].iloc[0] & bit("wecom_users", "direct_leaders")


def test_list_id_records_are_ids_only_and_leave_department_leaders_unknown() -> None:
    members, memberships, leaders, unsure = users({"userid": "zhangsan", "department": [2, 3]})
    mask = int(members[WITHHELD].iloc[0])
    for name in ("name", "mobile", "position", "status", "direct_leaders"):
        assert mask & bit("wecom_users", name), name
    assert not mask & bit("wecom_users", "memberships")
    assert (memberships[WITHHELD] & bit("wecom_user_departments", "is_leader") != 0).all()
    assert unsure == {2}, "department 2 withheld its leaders and so did the member"
    assert leaders.empty


def test_departments_keep_the_leaders_bit_only_where_no_member_said() -> None:
    raw = pd.DataFrame.from_records([{"id": 1, "parentid": 0, "order": 1}, {"id": 2, "parentid": 1, "order": 2}])
    departments, _, _ = transform_departments(raw, CORP)
    assert list(withheld_leader_departments(raw)) == [1, 2]
    marked = mark_departments(raw, departments, leaders_unknown={2}).set_index("department_id")[WITHHELD]
    assert marked[2] & bit("wecom_departments", "leaders")
    assert not marked[1] & bit("wecom_departments", "leaders")
    assert marked[1] & bit("wecom_departments", "name") and not marked[1] & bit("wecom_departments", "sort_order")


def test_fill_takes_stored_values_for_withheld_fields_only_and_rehashes_as_stored() -> None:
    stored_members, _, _, _ = users(FULL | {"mobile": "13800000000", "position": "工程师"})
    stored = stored_members.drop(columns=WITHHELD)
    withheld_answer = {k: v for k, v in FULL.items() if k not in ("mobile", "gender", "email")}
    members, _, _, _ = users(withheld_answer)
    filled = fill_withheld(members, stored, "wecom_users")
    assert WITHHELD not in filled.columns
    assert filled.loc[0, "mobile"] == "13800000000" and filled.loc[0, "gender"] == 1
    assert filled.loc[0, "row_hash"] == stored.loc[0, "row_hash"]

    changed, _, _, _ = users(withheld_answer | {"position": "经理", "email": ""})
    refilled = fill_withheld(changed, stored, "wecom_users")
    assert refilled.loc[0, "mobile"] == "13800000000", "withheld: kept"
    assert pd.isna(refilled.loc[0, "email"]), "present and empty: cleared"
    assert refilled.loc[0, "position"] == "经理"
    assert refilled.loc[0, "row_hash"] == row_hash(refilled, "wecom_users").iloc[0] != stored.loc[0, "row_hash"]


def test_fill_leaves_rows_never_stored_as_they_are() -> None:
    members, _, _, _ = users({"userid": "newcomer", "department": [2]})
    stored, _, _, _ = users(FULL)
    filled = fill_withheld(members, stored.drop(columns=WITHHELD), "wecom_users")
    assert filled.loc[0, "userid"] == "newcomer" and pd.isna(filled.loc[0, "name"])
