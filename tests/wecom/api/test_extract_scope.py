"""Extraction within a department scope, against the simulator: what is staged, what it costs, who left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.wecom.api.test_extract import AES_KEY, CORP_ID, SECRET, by_id, client_for, staged
from wecom.api.client import WeComClient
from wecom.api.extract import extract_directory
from wecom.errors import WeComScopeError
from wecom.scope import CurrentEntities, Scope
from wecom_simulator.model import Org
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

STRATEGIES = ("export", "list", "detail", "ids")
APP = "app-with-a-visible-range"
# seed 5: 10 heads an 11-department subtree holding 13's five; 20 heads three departments.
SCOPE = Scope.from_option({"include": [10, 20], "exclude": [13]})


def org() -> Org:
    return generate_org(seed=5, members=300, departments=25)


def simulator(directory: Org, **settings: Any):
    return running_simulator(directory, corp_id=CORP_ID, secret=SECRET, export_queue_s=0, export_run_s=0, **settings)


def parents(directory: Org) -> dict[int, int]:
    return {d: dept.parentid for d, dept in directory.departments.items()}


def expected_members(directory: Org, inside: set[int]) -> dict[str, list[int]]:
    return {
        m.userid: [d for d in m.department if d in inside]
        for m in directory.member_list()
        if inside & set(m.department)
    }


def current_of(directory: Org, scope: Scope) -> CurrentEntities:
    """What the tables hold after a scoped sync of ``directory`` as it is now."""
    inside = scope.resolve(parents(directory)).departments
    members = expected_members(directory, set(inside))
    return CurrentEntities(frozenset(inside), {u: tuple(ds) for u, ds in members.items()})


def extract(sim: RunningSimulator, folder: Path, strategy: str, scope: Scope, **options: Any) -> dict[str, Any]:
    current = options.pop("current", None)
    secret = options.pop("secret", SECRET)
    with WeComClient(sim.base_url, CORP_ID, secret, encoding_aes_key=AES_KEY, backoff_base=0.001) as client:
        return extract_directory(
            client,
            folder,
            strategy=strategy,
            max_workers=4,
            scope=scope,
            current=None if current is None else lambda: current,
            **options,
        )


def exits(folder: Path) -> dict[str, list[Any]]:
    return json.loads((folder / "scope_exits.json").read_text(encoding="utf-8"))


def test_every_strategy_stages_the_scope_and_only_in_scope_memberships(tmp_path: Path) -> None:
    directory = org()
    inside = set(SCOPE.resolve(parents(directory)).departments)
    assert inside == {10, 11, 12, 22, 23, 31, 20, 27, 33}
    members = expected_members(directory, inside)
    assert any(len(ds) < len(directory.user(u).department) for u, ds in members.items()), "some straddle the scope"
    with simulator(directory) as sim:
        for strategy in STRATEGIES:
            manifest = extract(sim, tmp_path / strategy, strategy, SCOPE)
            assert manifest["complete"], manifest["incomplete_reasons"]
            assert manifest["scope"] == {"include": [10, 20], "exclude": [13], "tops": [10, 20]}
            departments = by_id(staged(tmp_path / strategy, "departments.jsonl"), "id")
            users = by_id(staged(tmp_path / strategy, "users.jsonl"), "userid")
            assert set(departments) == inside, strategy
            assert {u: sorted(r["department"]) for u, r in users.items()} == {
                u: sorted(ds) for u, ds in members.items()
            }, strategy
            for userid, record in users.items():
                if "order" in record:
                    full = directory.user(userid)
                    assert record["order"] == [full.order[full.department.index(d)] for d in record["department"]]
            assert exits(tmp_path / strategy) == {"departments": [], "users": []}
            tags = by_id(staged(tmp_path / strategy, "tags.jsonl"), "tagid")
            assert set(tags) == set(directory.tags), "every tag is listed; only its memberships are scoped"
            for tag_id, record in tags.items():
                tag = directory.tags[tag_id]
                assert sorted(u["userid"] for u in record["userlist"]) == sorted(
                    m.userid for m in tag.users if m.userid in members
                ), strategy
                assert sorted(record["partylist"]) == sorted(d for d in tag.parties if d in inside), strategy
            outside = sum(
                len([m for m in t.users if m.userid not in members]) + len([d for d in t.parties if d not in inside])
                for t in directory.tags.values()
            )
            assert manifest["tag_members_outside_scope"] == outside > 0, "some tag members lie outside the scope"


def test_a_small_scope_in_a_large_company_costs_little(tmp_path: Path) -> None:
    directory = generate_org(seed=3, members=20_000, departments=2_000)
    top = min(
        (d for d in directory.departments if 10 <= len(directory.subtree_ids(d)) <= 40),
        key=lambda d: len(directory.subtree_ids(d)),
    )
    scope = Scope.from_option({"include": [top]})
    inside = scope.resolve(parents(directory)).departments
    with simulator(directory) as sim:
        manifest = extract(sim, tmp_path, "list", scope)
    calls = manifest["api_calls"]
    print(f"list walk of {len(inside)} of {len(directory.departments)} departments: {calls}")
    assert manifest["complete"] and manifest["departments"] == len(inside)
    tag_calls = {"tag/list": 1, "tag/get": len(directory.tags)}  # WeCom reads tags company-wide only
    assert calls == {"gettoken": 1, "department/list": 1, "user/list": len(inside)} | tag_calls
    assert manifest["users"] == len(expected_members(directory, set(inside)))


def test_who_left_the_scope_is_told_from_who_left_the_company(tmp_path: Path) -> None:
    """Every strategy agrees; the list walk pays one simplelist and a user/get per member that left a
    department still in scope, none for the members that went with their department."""
    with simulator(org()) as sim:
        state = sim.state
        state.add_department({"id": 40, "name": "Soon empty", "parentid": 11, "order": 1})
        current = current_of(state.org, SCOPE)
        only = {d: [m.userid for m in state.org.members_in(d) if set(m.department) == {d}] for d in (12, 23)}
        moved_out, deleted = only[12][0], only[12][1]
        state.update_user(moved_out, {"department": [5]})  # 5 is outside the scope
        state.delete_user(deleted)
        state.update_department(23, {"parentid": 14})  # 14 is under the excluded 13: 23 leaves with its members
        state.delete_department(40)
        state.reset_stats()
        seen = {}
        for strategy in STRATEGIES:
            extract(sim, tmp_path / strategy, strategy, SCOPE, current=current)
            seen[strategy] = exits(tmp_path / strategy)
            if strategy == "list":
                calls = dict(sim.calls)
            state.reset_stats()
    with_23 = [u for u, held in current.members.items() if set(held) == {23}]
    assert set(only[23]) <= set(with_23), "members also outside the scope leave with it too"
    assert seen["list"] == {"departments": [23], "users": sorted([moved_out, *with_23])}
    assert all(found == seen["list"] for found in seen.values()), seen
    assert calls["department/simplelist"] == 1
    assert calls["user/get"] == 2, "the mover and the deleted member, not the members of department 23"


def test_an_app_whose_visible_range_is_a_subtree_is_incomplete_until_it_is_declared_the_scope(
    tmp_path: Path,
) -> None:
    directory = org()
    inside = set(directory.subtree_ids(10))
    with simulator(directory, app_secrets={APP: "old_app"}, visible_ranges={APP: [10]}) as sim:
        whole = extract(sim, tmp_path / "whole", "list", Scope(), secret=APP)
        assert not whole["complete"]
        (reason,) = whole["incomplete_reasons"]
        assert "sees only the subtrees of department(s) 10" in reason and '{"scope": {"include": [10]}}' in reason
        assert whole["scope"]["tops"] == [10] and whole["departments"] == len(inside)

        declared = Scope.from_option({"include": [10]})
        current = current_of(directory, declared)
        leaver = next(m.userid for m in directory.members_in(12) if set(m.department) == {12})
        sim.state.update_user(leaver, {"department": [2]})  # out of the visible range: user/get answers 60011
        for strategy in ("list", "export"):
            manifest = extract(sim, tmp_path / strategy, strategy, declared, secret=APP, current=current)
            assert manifest["complete"], manifest["incomplete_reasons"]
            assert exits(tmp_path / strategy) == {"departments": [], "users": [leaver]}, strategy


@pytest.mark.parametrize("strategy", ["list", "export"])
def test_a_scope_naming_a_department_wecom_does_not_list_fails_naming_it(tmp_path: Path, strategy: str) -> None:
    with simulator(org()) as sim, pytest.raises(WeComScopeError, match=r"department\(s\) 999.*wecom_companies"):
        extract(sim, tmp_path, strategy, Scope.from_option({"include": [10, 999]}))


def test_the_whole_company_reads_nothing_from_the_tables(tmp_path: Path) -> None:
    def never() -> CurrentEntities:
        raise AssertionError("an unscoped extraction has no use for the stored entities")

    with simulator(org()) as sim, client_for(sim) as client:
        manifest = extract_directory(client, tmp_path, strategy="list", max_workers=4, current=never)
    assert manifest["complete"] and manifest["scope"] == {"include": [1], "exclude": [], "tops": [1]}
    assert exits(tmp_path) == {"departments": [], "users": []}
