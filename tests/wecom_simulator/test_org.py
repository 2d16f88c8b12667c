"""The org generator and the directory model: determinism, WeCom's shape rules, and admin edits."""

from __future__ import annotations

from collections import Counter

import pytest

from wecom_simulator.model import DirectoryError, EntityConflict, EntityNotFound
from wecom_simulator.org import Org, generate_org
from wecom_simulator.payloads import department_full, user_full


@pytest.fixture(scope="module")
def org() -> Org:
    return generate_org(seed=3, members=2000, departments=200)


def snapshot(org: Org) -> tuple[list[dict], list[dict]]:
    departments = [department_full(org.departments[d]) for d in org.subtree_ids(1)]
    return departments, [user_full(org, m) for m in org.member_list()]


def test_same_seed_same_directory_other_seed_other_directory() -> None:
    first = snapshot(generate_org(seed=1, members=300, departments=40))
    assert first == snapshot(generate_org(seed=1, members=300, departments=40))
    assert first != snapshot(generate_org(seed=2, members=300, departments=40))


def test_contract_defaults_and_counts() -> None:
    org = generate_org(seed=1, members=50, departments=10)
    assert (len(org.users), len(org.departments), org.max_depth) == (50, 10, 15)


def test_tree_shape(org: Org) -> None:
    root = org.departments[1]
    assert (root.parentid, len(org.departments)) == (0, 200)
    depths = {d: org.depth(d) for d in org.departments}
    assert max(depths.values()) == 15
    assert all(d > 0 for d in org.departments)
    assert sorted(org.departments) != list(range(1, 201)), "ids should have gaps"
    for dept in org.departments.values():
        assert 0 <= dept.order < 2**32
        assert dept.name and isinstance(dept.name_en, str)
        if dept.id != 1:
            assert dept.parentid in org.departments
    for children in org.children.values():
        names = [org.departments[c].name for c in children]
        assert len(names) == len(set(names)), "sibling names must be unique"
        keys = [(-org.departments[c].order, c) for c in children]
        assert keys == sorted(keys), "larger order sorts first"
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in d.name) for d in org.departments.values())
    assert any(d.name_en for d in org.departments.values())


def test_depth_limit_is_configurable() -> None:
    small = generate_org(seed=1, members=10, departments=50, max_depth=4)
    assert max(small.depth(d) for d in small.departments) == 4


def test_members_shape(org: Org) -> None:
    users = [user_full(org, m) for m in org.member_list()]
    assert {u["status"] for u in users} == {1, 2, 4, 5}
    assert {u["gender"] for u in users} == {"0", "1", "2"}
    lowered = [u["userid"].lower() for u in users]
    assert len(set(lowered)) == len(users), "userids are unique case-insensitively"
    assert any(u["userid"] != u["userid"].lower() for u in users), "some userids are mixed-case"
    counts = Counter(len(u["department"]) for u in users)
    assert counts[1] > len(users) / 2 and max(counts) == 20
    for u in users:
        assert 1 <= len(u["department"]) <= 20
        assert len(u["order"]) == len(u["is_leader_in_dept"]) == len(u["department"])
        assert all(0 <= o < 2**32 for o in u["order"])
        assert u["main_department"] in u["department"]
        assert len(u["direct_leader"]) <= 5 and u["userid"] not in u["direct_leader"]
        assert all(d in org.departments for d in u["department"])
        assert {0, 1} <= {a["type"] for a in u["extattr"]["attrs"]} <= {0, 1, 2}
    assert any(u["main_department"] != u["department"][0] for u in users)
    assert any(not u["direct_leader"] for u in users) and any(len(u["direct_leader"]) > 1 for u in users)
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in u["name"]) for u in users)
    for field in ("alias", "position", "mobile", "email", "biz_mail", "telephone", "address", "avatar"):
        assert any(u[field] for u in users), field


def test_leaders_agree_between_departments_and_members(org: Org) -> None:
    for dept in org.departments.values():
        members = org.members_in(dept.id)
        for leader in dept.leaders:
            assert leader in members
    for member in org.member_list():
        flags = org.leader_flags(member)
        for dept_id, flag in zip(member.department, flags, strict=True):
            assert flag == (member in org.departments[dept_id].leaders)
    assert any(dept.leaders for dept in org.departments.values())


def test_large_directories_generate() -> None:
    """A large company's 10,000 departments. 100,000 members is make bench's size: the simulator prints its
    generation time at start."""
    big = generate_org(seed=1, members=20_000, departments=10_000)
    assert len(big.users) == 20_000 and len(big.departments) == 10_000
    member = big.member_list()[19_999]
    assert user_full(big, member)["userid"] == member.userid


# -- edits --------------------------------------------------------------------------------------------


@pytest.fixture
def small() -> Org:
    return generate_org(seed=5, members=40, departments=8)


def test_rename_keeps_references_and_reports_the_change(small: Org) -> None:
    leader = next(m for m in small.member_list() if any(m in d.leaders for d in small.departments.values()))
    old = leader.userid
    [change] = small.update_user(old.upper(), {"new_userid": "Renamed.Leader"})
    assert (change.kind, change.old_userid, change.fields) == ("update_user", old, ())
    assert small.user("renamed.leader") is leader and small.user(old) is None
    assert any("Renamed.Leader" in department_full(d)["department_leader"] for d in small.departments.values())


def test_move_member_updates_department_lists_and_flags(small: Org) -> None:
    member = small.member_list()[5]
    target = max(small.departments)
    [change] = small.update_user(member.userid, {"department": [target], "is_leader_in_dept": [1]})
    assert set(change.fields) >= {"department", "main_department", "is_leader_in_dept"}
    assert member.department == (target,) and member.main_department == target
    assert member in small.members_in(target) and member in small.departments[target].leaders
    assert small.update_user(member.userid, {"department": [target]}) == []


def test_profile_edit_materializes_only_the_edited_member(small: Org) -> None:
    member, other = small.member_list()[1:3]
    before = user_full(small, other)
    [change] = small.update_user(member.userid, {"position": "首席执行官", "status": 5})
    assert set(change.fields) == {"position", "status"}
    assert user_full(small, member)["position"] == "首席执行官"
    assert user_full(small, other) == before and other.profile is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"department": []}, DirectoryError),
        ({"department": [999_999]}, EntityNotFound),
        ({"department": list(range(1, 30))}, DirectoryError),
        ({"order": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]}, DirectoryError),
        ({"status": 3}, DirectoryError),
        ({"gender": 1}, DirectoryError),
        ({"main_department": 999}, DirectoryError),
        ({"direct_leader": ["a", "b", "c", "d", "e", "f"]}, DirectoryError),
        ({"new_userid": "bad userid!"}, DirectoryError),
        ({"favourite_colour": "red"}, DirectoryError),
    ],
)
def test_refused_member_edits_change_nothing(small: Org, changes: dict, error: type[Exception]) -> None:
    member = small.member_list()[3]
    before = user_full(small, member)
    with pytest.raises(error):
        small.update_user(member.userid, changes)
    assert user_full(small, member) == before


def test_userids_clash_case_insensitively(small: Org) -> None:
    first, second = small.member_list()[:2]
    with pytest.raises(EntityConflict):
        small.update_user(second.userid, {"new_userid": first.userid.swapcase()})
    with pytest.raises(EntityConflict):
        small.add_user({"userid": first.userid.upper(), "name": "x", "department": [1]})


def test_delete_member_drops_leader_references(small: Org) -> None:
    subordinate = next(m for m in small.member_list() if m.direct_leader)
    leader = subordinate.direct_leader[0]
    small.delete_user(leader.userid)
    assert leader.userid not in user_full(small, subordinate)["direct_leader"]
    assert all(leader not in small.members_in(d) for d in small.departments)
    with pytest.raises(EntityNotFound):
        small.delete_user(leader.userid)


def test_department_edits_follow_wecom_rules(small: Org) -> None:
    [created] = small.add_department({"name": "新部门", "name_en": "New", "parentid": 1, "order": 5})
    new_id = created.entity.id
    assert new_id == max(small.departments) and new_id in small.children[1]
    with pytest.raises(EntityConflict):
        small.add_department({"name": "新部门", "parentid": 1})
    with pytest.raises(EntityConflict):
        small.add_department({"id": new_id, "name": "other", "parentid": 1})
    child = small.add_department({"name": "子部门", "parentid": new_id})[0].entity.id
    with pytest.raises(DirectoryError):
        small.update_department(new_id, {"parentid": child})
    with pytest.raises(DirectoryError):
        small.update_department(1, {"parentid": new_id})
    with pytest.raises(EntityConflict):
        small.delete_department(new_id)
    [moved] = small.update_department(child, {"parentid": 1, "name": "改名"})
    assert (moved.kind, set(moved.fields)) == ("update_party", {"name", "parentid"})
    assert small.update_department(child, {"order": 7}) == []
    assert [c.kind for c in small.delete_department(child)] == ["delete_party"]


def test_root_can_be_renamed_but_not_moved_or_deleted(small: Org) -> None:
    [renamed] = small.update_department(1, {"name": "新公司名"})
    assert (renamed.kind, renamed.fields) == ("update_party", ("name",))
    with pytest.raises(DirectoryError):
        small.delete_department(1)


def test_department_depth_limit_on_create_and_move() -> None:
    org = generate_org(seed=1, members=5, departments=20, max_depth=3)
    deepest = max(org.departments, key=org.depth)
    with pytest.raises(DirectoryError):
        org.add_department({"name": "too deep", "parentid": deepest})
    shallow = org.add_department({"name": "shallow", "parentid": 1})[0].entity.id
    org.add_department({"name": "below", "parentid": shallow})
    with pytest.raises(DirectoryError):
        org.update_department(shallow, {"parentid": org.departments[deepest].parentid})


def test_department_leader_edit_reports_member_flag_changes(small: Org) -> None:
    dept_id = next(d for d in small.departments if len(small.members_in(d)) >= 2)
    members = small.members_in(dept_id)
    before = set(small.departments[dept_id].leaders)
    changes = small.update_department(dept_id, {"department_leader": [members[1].userid]})
    assert all(c.kind == "update_user" and c.fields == ("is_leader_in_dept",) for c in changes)
    assert {c.entity for c in changes} == before ^ {members[1]}
    assert small.departments[dept_id].leaders == [members[1]]
    outsider = next(m for m in small.member_list() if m not in members)
    with pytest.raises(DirectoryError):
        small.update_department(dept_id, {"department_leader": [outsider.userid]})
