"""Every pre-load check fires on its problem, names the offending ids, and all come in one error."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.wecom.directory.test_transform import CORP, TREE, raw_frame
from wecom.directory.quality import (
    check_departments,
    check_memberships,
    check_snapshot,
    check_userids,
    check_users,
)
from wecom.directory.transform import Snapshot, transform, transform_departments
from wecom.errors import PermanentError, QualityCheckError

MEMBERS = [
    {"userid": "zhangsan", "name": "张三", "department": [2, 4]},
    {"userid": "lisi", "name": "李四", "department": [3]},
]


def snapshot(departments: list[dict] = TREE, members: list[dict] = MEMBERS) -> Snapshot:
    return transform(raw_frame(*departments), raw_frame(*members), CORP)


def problems_of(snap: Snapshot) -> list[str]:
    with pytest.raises(QualityCheckError) as failure:
        check_snapshot(snap)
    return failure.value.problems


def departments(*records: dict) -> pd.DataFrame:
    return transform_departments(raw_frame(*records), CORP)[0]


def every_problem(snap: Snapshot) -> list[str]:
    """What each check finds in ``snap``, in the order ``check_snapshot`` runs them."""
    return check_departments(snap.departments) + check_users(
        snap.users, snap.user_departments, snap.departments["department_id"]
    )


@pytest.mark.parametrize(
    "snap",
    [snapshot(), transform(pd.DataFrame(), pd.DataFrame(), CORP)],
    ids=["clean", "empty"],
)
def test_a_clean_or_empty_snapshot_has_no_problem_and_passes(snap: Snapshot) -> None:
    assert every_problem(snap) == []
    assert check_snapshot(snap) is None  # raises QualityCheckError on any problem


def test_conflicting_records_of_one_department_are_named() -> None:
    renamed = {**TREE[3], "name": "前端组"}
    assert check_departments(departments(*TREE, renamed)) == [
        "department_id in more than one row, with conflicting content: 4"
    ]


def test_departments_with_an_unknown_parent_are_named_with_it() -> None:
    lost = [{"id": 9, "name": "失联部门", "parentid": 99}, {"id": 10, "parentid": 9}, {"id": 11, "parentid": 98}]
    assert check_departments(departments(*TREE, *lost)) == [
        "departments whose parent is unknown: 9 (parent 99), 11 (parent 98)"
    ]


def test_a_cycle_names_its_departments_but_not_those_hanging_below_it() -> None:
    cycle = [{"id": 7, "parentid": 5}, {"id": 5, "parentid": 6}, {"id": 6, "parentid": 7}]
    below = [{"id": 8, "parentid": 5}, {"id": 12, "parentid": 8}]
    own_parent = {"id": 20, "parentid": 20}
    assert check_departments(departments(*TREE, *cycle, *below, own_parent)) == [
        "the department tree has a cycle through departments: 5, 6, 7, 20"
    ]


@pytest.mark.timeout(10)
def test_a_cycle_as_large_as_wecom_allows_is_found_without_hanging() -> None:
    size = 30_000
    ring = pd.DataFrame({"department_id": range(1, size + 1), "parent_id": [size, *range(1, size)]})
    [problem] = check_departments(ring)
    assert problem.startswith("the department tree has a cycle through departments: 1, 2, 3,")
    assert problem.endswith(f"and {size - 20} more")


def test_userids_that_differ_only_in_case_are_named_together() -> None:
    members = [*MEMBERS, {"userid": "ZhangSan", "name": "张三", "department": [3]}]
    assert problems_of(snapshot(members=members)) == [
        "userids that WeCom treats as one (case-insensitive): ZhangSan, zhangsan"
    ]


def test_userid_clashes_across_chunks_are_found_on_the_joined_userids() -> None:
    chunks = [pd.Series(["lisi", "LiSi"]), pd.Series(["wangwu", "LISI"])]
    assert check_userids(pd.concat(chunks)) == ["userids that WeCom treats as one (case-insensitive): LISI, LiSi, lisi"]


def test_duplicate_memberships_are_named() -> None:
    snap = snapshot()
    doubled = pd.concat([snap.user_departments, snap.user_departments.head(1)])
    assert check_memberships(doubled, snap.departments["department_id"]) == [
        "duplicate memberships (userid in department_id): lisi in 3"
    ]


def test_members_of_unknown_departments_are_named() -> None:
    members = [*MEMBERS, {"userid": "wangwu", "department": [1, 77]}, {"userid": "zhaoliu", "department": [78]}]
    assert problems_of(snapshot(members=members)) == [
        "members of unknown departments (userid in department_id): wangwu in 77, zhaoliu in 78"
    ]


def test_check_users_works_on_one_chunk() -> None:
    snap = snapshot(members=[{"userid": "wangwu", "department": [77]}])
    assert check_users(snap.users, snap.user_departments, snap.departments["department_id"]) == [
        "members of unknown departments (userid in department_id): wangwu in 77"
    ]


def test_every_problem_comes_in_one_error() -> None:
    broken_tree = [*TREE, {"id": 9, "parentid": 99}, {"id": 5, "parentid": 5}]
    members = [*MEMBERS, {"userid": "LISI", "department": [77]}]
    problems = problems_of(snapshot(broken_tree, members))
    assert problems == [
        "departments whose parent is unknown: 9 (parent 99)",
        "the department tree has a cycle through departments: 5",
        "userids that WeCom treats as one (case-insensitive): LISI, lisi",
        "members of unknown departments (userid in department_id): LISI in 77",
    ]


def test_long_id_lists_are_capped() -> None:
    members = [{"userid": f"user{n:02d}", "department": [100 + n]} for n in range(25)]
    [problem] = problems_of(snapshot(members=members))
    assert problem.endswith("user19 in 119 and 5 more")
    assert "user20" not in problem


def test_the_error_is_one_line_naming_each_rule_and_its_records() -> None:
    snap = snapshot([*TREE, {"id": 9, "parentid": 99}], members=[{"userid": "wangwu", "department": [77]}])
    with pytest.raises(QualityCheckError) as failure:
        check_snapshot(snap)
    assert str(failure.value) == (
        "snapshot failed its quality checks, nothing was loaded: departments whose parent is unknown: 9 (parent 99); "
        "members of unknown departments (userid in department_id): wangwu in 77"
    )
    assert isinstance(failure.value, PermanentError)
