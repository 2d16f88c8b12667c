"""The department scope: its option, resolution over a tree, single-department answers, member records."""

from __future__ import annotations

import json
import re

import pytest

from wecom.companies import read_companies
from wecom.errors import ScopeConfigError
from wecom.scope import WHOLE_COMPANY, ResolvedScope, Scope, parents_of, tops_without_parents

#        1
#      /   \
#     2     3
#    / \     \
#   4   5     6
#   |
#   7
TREE = {1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 3, 7: 4}


def test_no_scope_is_the_whole_company() -> None:
    assert Scope.from_option(None) is WHOLE_COMPANY
    assert WHOLE_COMPANY.whole and WHOLE_COMPANY.text() is None
    assert Scope.from_option({"include": [1]}).whole
    resolved = WHOLE_COMPANY.resolve(TREE)
    assert resolved.departments == set(TREE) and resolved.tops == (1,) and resolved.missing == ()


@pytest.mark.parametrize(
    ("option", "departments", "tops"),
    [
        ({"include": [2]}, {2, 4, 5, 7}, (2,)),
        ({"exclude": [2]}, {1, 3, 6}, (1,)),
        ({"include": [2], "exclude": [4]}, {2, 5}, (2,)),
        ({"include": [4, 3]}, {3, 4, 6, 7}, (3, 4)),
        ({"include": [2, 4]}, {2, 4, 5, 7}, (2,)),  # nested includes add nothing
        ({"include": [2], "exclude": [7, 6]}, {2, 4, 5}, (2,)),  # an exclude outside the includes is harmless
        ({"include": [1], "exclude": [2, 3]}, {1}, (1,)),
    ],
)
def test_resolution_takes_included_subtrees_minus_excluded_ones(option, departments, tops) -> None:
    resolved = Scope.from_option(option).resolve(TREE)
    assert resolved.departments == departments and resolved.tops == tops


def test_an_included_department_the_tree_lacks_is_reported_missing() -> None:
    resolved = Scope.from_option({"include": [2, 99]}).resolve(TREE)
    assert resolved.missing == (99,) and resolved.departments == {2, 4, 5, 7}


def test_resolution_over_a_cycle_terminates() -> None:
    resolved = Scope.from_option({"include": [2]}).resolve({2: 3, 3: 2, 4: 2})
    assert resolved.departments == {2, 3, 4} and resolved.tops == ()


def test_resolution_over_a_large_tree_visits_each_department_once() -> None:
    wide = {1: 0} | {d: (d - 2) // 3 + 1 for d in range(2, 30_001)}
    resolved = Scope.from_option({"include": [2], "exclude": [5]}).resolve(wide)
    assert 2 in resolved.departments and 5 not in resolved.departments
    assert all(wide[d] in resolved.departments for d in resolved.departments if d != 2)


@pytest.mark.parametrize(
    ("department", "expected"),
    [(7, True), (5, True), (2, True), (3, False), (1, False), (99, None)],
)
def test_one_department_is_placed_by_its_parent_chain(department: int, expected: bool | None) -> None:
    assert Scope.from_option({"include": [2], "exclude": [9]}).contains(department, TREE) is expected


def test_a_chain_through_an_excluded_department_is_out_and_a_broken_chain_unknown() -> None:
    scope = Scope.from_option({"include": [2], "exclude": [4]})
    assert scope.contains(7, TREE) is False
    assert scope.contains(8, {8: 50}) is None
    assert scope.contains(8, {8: 9, 9: 8}) is None
    assert WHOLE_COMPANY.contains(7, TREE) is True


def test_member_records_keep_only_their_in_scope_memberships_aligned() -> None:
    resolved = ResolvedScope(frozenset({2, 5}), (2,))
    record = {"userid": "a", "department": [1, 5, 3], "order": [10, 50, 30], "is_leader_in_dept": [0, 1, 0]}
    assert resolved.restrict_member(record) == {
        "userid": "a",
        "department": [5],
        "order": [50],
        "is_leader_in_dept": [1],
    }
    assert resolved.restrict_member({"userid": "b", "department": [1, 3]}) is None
    whole = {"userid": "c", "department": [2, 5], "order": [1, 2]}
    assert resolved.restrict_member(whole) == whole
    # A misaligned list is left for the transform, which nulls it; a record without departments is kept.
    odd = resolved.restrict_member({"userid": "d", "department": [1, 2], "order": [7]})
    assert odd == {"userid": "d", "department": [2], "order": [7]}
    assert resolved.restrict_member({"userid": "e"}) == {"userid": "e"}


def test_tops_without_parents_are_what_a_visible_range_shows() -> None:
    assert tops_without_parents(parents_of([{"id": 2, "parentid": 1}, {"id": 4, "parentid": 2}])) == (2,)
    assert tops_without_parents(TREE) == ()


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({"includes": [2]}, r"scope\.includes: unknown key; known keys are include, exclude"),
        ({"include": [2, "3"]}, r"scope\.include: '3' is not an integer department id"),
        ({"include": [2.0]}, r"scope\.include: 2\.0 is not an integer"),
        ({"exclude": [True]}, r"scope\.exclude: True is not an integer"),
        ({"exclude": 5}, r"scope\.exclude: expected a list of department ids, got int"),
        ({"include": []}, r"scope\.include: must name at least one department"),
        ({"include": [0]}, r"scope\.include: 0 is not a department id"),
        ({"include": [2], "exclude": [2]}, r"scope: department\(s\) \[2\] are both included and excluded"),
        ([2], r"wecom_companies\[0\]\.scope: expected dict"),
    ],
)
def test_a_malformed_scope_names_the_key_and_the_value(scope, message: str) -> None:
    config = read_companies(json.dumps([{"name": "acme", "scope": scope}]))
    assert config.companies == [] and len(config.problems) == 1
    assert re.search(message, config.problems[0]) and "(company 'acme')" in config.problems[0]


def test_a_company_scope_is_parsed_and_described() -> None:
    (company,) = read_companies(json.dumps([{"name": "acme", "scope": {"include": [4, 2], "exclude": [7]}}])).companies
    assert company.scope == Scope(include=(2, 4), exclude=(7,))
    assert company.scope.text() == '{"include":[2,4],"exclude":[7]}'
    assert company.scope.describe() == "the subtrees of department(s) 2, 4 minus the subtrees of 7"
    with pytest.raises(ScopeConfigError):
        Scope.from_option({"include": "2"})
