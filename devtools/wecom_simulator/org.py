"""Deterministic generator of a realistic company directory.

The same ``(seed, members, departments, max_depth)`` always yields the same
directory, so tests and benchmarks can state exact expectations. The shape
covers what a sync must survive: a spine reaching ``max_depth`` levels, gaps
in department ids, equal sibling orders, members in up to 20 departments with
the main department not always first, mixed-case userids, members with no
direct leader or several, every status, empty departments, and tags holding
members and whole departments.
"""

from __future__ import annotations

import random

from wecom_simulator.model import (
    MAX_DEPTH,
    MAX_DIRECT_LEADERS,
    MAX_USER_DEPARTMENTS,
    ROOT_ID,
    Change,
    Department,
    DirectoryError,
    Member,
    Org,
    Tag,
)
from wecom_simulator.profiles import identity
from wecom_simulator.tags import MAX_TAGS, generate_tags, generated_tag_count

__all__ = ["Change", "Department", "DirectoryError", "Member", "Org", "Tag", "generate_org"]

ROOT_NAME = ("示例科技有限公司", "Example Technology Co., Ltd.")
ROOT_ORDER = 100_000_000
LEVEL_NAMES: tuple[tuple[tuple[str, str], ...], ...] = (
    (
        ("总裁办", "President's Office"), ("研发中心", "R&D Center"), ("销售中心", "Sales Center"),
        ("市场部", "Marketing"), ("财务部", "Finance"), ("人力资源部", "Human Resources"), ("法务部", "Legal"),
        ("运营中心", "Operations"), ("客户服务中心", "Customer Service"), ("采购部", "Procurement"),
        ("产品中心", "Product Center"), ("数据中心", "Data Center"), ("信息安全部", "Information Security"),
    ),
    (
        ("华东区", "East China"), ("华北区", "North China"), ("华南区", "South China"), ("西南区", "Southwest"),
        ("东北区", "Northeast"), ("西北区", "Northwest"), ("华中区", "Central China"), ("海外事业部", "Overseas"),
    ),
    (
        ("一组", "Team 1"), ("二组", "Team 2"), ("三组", "Team 3"), ("平台组", "Platform"),
        ("基础架构组", "Infrastructure"), ("前端组", "Frontend"), ("后端组", "Backend"), ("测试组", "QA"),
        ("大客户组", "Key Accounts"), ("渠道组", "Channels"), ("运维组", "SRE"),
    ),
)  # fmt: skip


def generate_org(
    seed: int = 1, members: int = 1000, departments: int = 100, max_depth: int = MAX_DEPTH, tags: int | None = None
) -> Org:
    """A directory of ``members`` members in ``departments`` departments (root id 1 included), and ``tags``
    tags (default: one per eight departments, at most 12) holding members and departments."""
    if departments < 1 or members < 0:
        raise ValueError("need at least one department and a non-negative member count")
    if not 1 <= max_depth <= MAX_DEPTH:
        raise ValueError(f"max_depth must be 1-{MAX_DEPTH}")
    if tags is not None and not 0 <= tags <= MAX_TAGS:
        raise ValueError(f"tags must be 0-{MAX_TAGS}")
    rng = random.Random(seed)
    org = Org(seed=seed, max_depth=max_depth)
    _build_tree(org, rng, departments)
    _add_members(org, rng, members)
    _assign_leaders(org, rng)
    generate_tags(org, generated_tag_count(departments) if tags is None else tags)
    return org


def _build_tree(org: Org, rng: random.Random, count: int) -> None:
    """Random recursive tree plus a spine so the depth limit is really reached."""
    org.insert_department(Department(ROOT_ID, ROOT_NAME[0], ROOT_NAME[1], 0, ROOT_ORDER))
    ids = [ROOT_ID]
    depth = {ROOT_ID: 1}
    names: dict[int, set[str]] = {}
    next_id = ROOT_ID
    for position in range(1, count):
        next_id += 1 + (rng.randrange(1, 5) if rng.random() < 0.1 else 0)
        parent = ids[-1] if position < org.max_depth else ids[rng.randrange(len(ids))]
        while depth[parent] >= org.max_depth:
            parent = org.departments[parent].parentid
        level = depth[parent] + 1
        name, name_en = _sibling_name(rng, level, names.setdefault(parent, set()))
        order = rng.getrandbits(32) if rng.random() < 0.8 else 0
        org.insert_department(Department(next_id, name, name_en, parent, order))
        ids.append(next_id)
        depth[next_id] = level
    org.sort_children(ids)


def _sibling_name(rng: random.Random, level: int, taken: set[str]) -> tuple[str, str]:
    """WeCom refuses two siblings with one name, so clashes get a number suffix."""
    vocabulary = LEVEL_NAMES[min(level, len(LEVEL_NAMES) + 1) - 2]
    name, name_en = vocabulary[rng.randrange(len(vocabulary))]
    suffix = 1
    unique = name
    while unique in taken:
        suffix += 1
        unique = f"{name}{suffix}"
    taken.add(unique)
    if rng.random() < 0.15:
        return unique, ""
    return unique, name_en if suffix == 1 else f"{name_en} {suffix}"


def _department_count(rng: random.Random, index: int, available: int) -> int:
    if index == 0:
        wanted = MAX_USER_DEPARTMENTS
    else:
        roll = rng.random()
        if roll < 0.85:
            wanted = 1
        elif roll < 0.95:
            wanted = 2
        elif roll < 0.995:
            wanted = rng.randint(3, 5)
        else:
            wanted = rng.randint(6, MAX_USER_DEPARTMENTS)
    return min(wanted, available)


def _add_members(org: Org, rng: random.Random, count: int) -> None:
    """Members share interned tuples where they can: single-department and all-zero-order ones are the norm."""
    dept_ids = list(org.departments)
    singles = {d: (d,) for d in dept_ids}
    zeros = {k: (0,) * k for k in range(1, MAX_USER_DEPARTMENTS + 1)}
    per_pinyin: dict[str, int] = {}
    for index in range(count):
        _, pinyin = identity(org.seed, index)
        clash = per_pinyin.get(pinyin, 0) + 1
        per_pinyin[pinyin] = clash
        userid = pinyin if clash == 1 else f"{pinyin}{clash}"
        if index % 25 == 1:
            userid = userid.capitalize()
        k = _department_count(rng, index, len(dept_ids))
        if k == 1:
            departments = singles[dept_ids[int(rng.random() * len(dept_ids))]]
            main = departments[0]
        else:
            departments = tuple(rng.sample(dept_ids, k))
            main = departments[rng.randrange(k)]
        orders = zeros[k] if rng.random() < 0.85 else tuple(rng.getrandbits(32) for _ in range(k))
        org.insert_member(Member(userid, index, departments, orders, main))


def _assign_leaders(org: Org, rng: random.Random) -> None:
    """Department leaders first, then each member reports to the nearest leaders above them."""
    for dept_id, dept in org.departments.items():
        pool = org.members_in(dept_id)
        if pool:
            roll = rng.random()
            wanted = 0 if roll < 0.15 else 1 if roll < 0.9 else 2
            dept.leaders = rng.sample(pool, min(wanted, len(pool)))
    nearest: dict[int, tuple[Member, ...]] = {0: ()}
    for dept_id in org.subtree_ids(ROOT_ID):
        dept = org.departments[dept_id]
        nearest[dept_id] = tuple(dept.leaders) or nearest[dept.parentid]
    for member in org.users.values():
        if rng.random() < 0.08:
            continue
        leaders = _leaders_above(org, member, nearest)
        if len(member.department) > 1:
            extra = (x for d in member.department for x in nearest[d] if x is not member and x not in leaders)
            leaders = tuple(dict.fromkeys((*leaders, *extra)))[:MAX_DIRECT_LEADERS]
        member.direct_leader = leaders


def _leaders_above(org: Org, member: Member, nearest: dict[int, tuple[Member, ...]]) -> tuple[Member, ...]:
    """A leader of their own main department reports to the leaders of the department above."""
    candidates = nearest[member.main_department]
    dept_id = member.main_department
    while member in candidates:
        others = tuple(x for x in candidates if x is not member)
        if others:
            return others
        dept_id = org.departments[dept_id].parentid
        candidates = nearest[dept_id]
    return candidates
