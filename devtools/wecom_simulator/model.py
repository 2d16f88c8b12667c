"""The simulated directory: departments, members, and the edits an admin can make.

Kept compact for million-member benchmarks: a generated member stores only its
userid, index and structure (departments, orders, direct leaders); its other
fields come from ``profiles.derive_profile`` until an edit stores them. Leader
flags are not stored per member at all: ``Department.leaders`` is the single
source, so a leader change can never leave ``is_leader_in_dept`` and
``department_leader`` disagreeing.

Not thread-safe by itself: ``SimulatorState`` serialises access with its lock.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from wecom_simulator.profiles import PROFILE_DEFAULTS, derive_profile

ROOT_ID = 1
MAX_DEPTH = 15
MAX_USER_DEPARTMENTS = 20
MAX_DIRECT_LEADERS = 5
UINT32_LIMIT = 2**32

_USERID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.@]*$")
STRUCTURAL_USER_FIELDS = ("department", "order", "is_leader_in_dept", "main_department", "direct_leader")
DEPARTMENT_FIELDS = ("name", "name_en", "parentid", "order", "department_leader")


class DirectoryError(Exception):
    """An admin edit WeCom would refuse; ``status`` is the admin API's HTTP answer."""

    status = 400


class EntityNotFound(DirectoryError):
    status = 404


class EntityConflict(DirectoryError):
    status = 409


@dataclass(slots=True, eq=False)
class Member:
    """One member; compared by identity so leader lists can hold references that survive renames."""

    userid: str
    index: int
    department: tuple[int, ...]
    order: tuple[int, ...]
    main_department: int
    direct_leader: tuple[Member, ...] = ()
    profile: dict[str, Any] | None = None


@dataclass(slots=True, eq=False)
class Department:
    id: int
    name: str
    name_en: str
    parentid: int
    order: int
    leaders: list[Member] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Tag:
    """A tag (标签): members and whole departments (a department means its subtree) that hold it."""

    id: int
    name: str
    users: list[Member] = field(default_factory=list)
    parties: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """One directory change as a change_contact event will describe it."""

    kind: str
    entity: Member | Department
    fields: tuple[str, ...] = ()
    old_userid: str | None = None


def _uint32(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < UINT32_LIMIT:
        raise DirectoryError(f"{what} must be an unsigned 32-bit integer, got {value!r}")
    return value


def _aligned(values: Any, length: int, what: str) -> tuple[int, ...]:
    if not isinstance(values, list | tuple) or len(values) != length:
        raise DirectoryError(f"{what} must be a list aligned with department ({length} entries)")
    return tuple(_uint32(v, what) for v in values)


class Org:
    """A company directory with the indexes the API needs: by userid (case-insensitive), by department."""

    def __init__(self, seed: int = 0, max_depth: int = MAX_DEPTH) -> None:
        self.seed = seed
        self.max_depth = max_depth
        self.departments: dict[int, Department] = {}
        self.children: dict[int, list[int]] = {}
        self.users: dict[str, Member] = {}
        self.dept_members: dict[int, list[Member]] = {}
        self.tags: dict[int, Tag] = {}
        self.version = 0
        self._cache: dict[str, tuple[int, Any]] = {}

    # -- queries ---------------------------------------------------------------------------------

    def user(self, userid: str) -> Member | None:
        return self.users.get(userid.lower())

    def is_current(self, member: Member) -> bool:
        """False once the member was deleted: leader references to it are then dropped from payloads."""
        return self.users.get(member.userid.lower()) is member

    def profile(self, member: Member) -> dict[str, Any]:
        if member.profile is not None:
            return member.profile
        return derive_profile(self.seed, member.index)

    def leader_flags(self, member: Member) -> list[int]:
        return [1 if member in self.departments[d].leaders else 0 for d in member.department]

    def direct_leader_ids(self, member: Member) -> list[str]:
        return [leader.userid for leader in member.direct_leader if self.is_current(leader)]

    def members_in(self, dept_id: int) -> list[Member]:
        return self.dept_members.get(dept_id, [])

    def depth(self, dept_id: int) -> int:
        depth = 1
        while (dept_id := self.departments[dept_id].parentid) != 0:
            depth += 1
        return depth

    def subtree_ids(self, dept_id: int) -> list[int]:
        """``dept_id`` and its descendants, parents first, siblings by descending ``order`` then id."""
        if dept_id == ROOT_ID:
            return self._cached("preorder", lambda: self._walk(ROOT_ID))
        return self._walk(dept_id)

    def _walk(self, dept_id: int) -> list[int]:
        found: list[int] = []
        stack = [dept_id]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(reversed(self.children.get(current, ())))
        return found

    def subtrees(self, dept_ids: Iterable[int]) -> frozenset[int]:
        """The departments of the subtrees of ``dept_ids`` (unknown ids add nothing): an app's visible range."""
        tops = sorted(set(dept_ids))
        key = "subtrees:" + ",".join(map(str, tops))
        return self._cached(
            key, lambda: frozenset(d for top in tops if top in self.departments for d in self._walk(top))
        )

    def member_list(self) -> list[Member]:
        """All members in a stable order; list_id cursors are positions in it."""
        return self._cached("members", lambda: list(self.users.values()))

    def user_view(self, member: Member) -> dict[str, Any]:
        """Every field of a member as user/get shows it (before permission filtering)."""
        return {
            "userid": member.userid,
            **self.profile(member),
            "department": list(member.department),
            "order": list(member.order),
            "is_leader_in_dept": self.leader_flags(member),
            "main_department": member.main_department,
            "direct_leader": self.direct_leader_ids(member),
        }

    def _cached(self, key: str, build: Any) -> Any:
        hit = self._cache.get(key)
        if hit is None or hit[0] != self.version:
            hit = (self.version, build())
            self._cache[key] = hit
        return hit[1]

    # -- raw insertion (the generator uses these, edits validate first) ----------------------------

    def insert_department(self, dept: Department) -> None:
        self.departments[dept.id] = dept
        self.children.setdefault(dept.id, [])
        self.dept_members.setdefault(dept.id, [])
        if dept.parentid:
            self.children.setdefault(dept.parentid, []).append(dept.id)
        self.version += 1

    def sort_children(self, parent_ids: Iterable[int]) -> None:
        for parent in parent_ids:
            self.children[parent].sort(key=lambda d: (-self.departments[d].order, d))
        self.version += 1

    def insert_member(self, member: Member) -> None:
        self.users[member.userid.lower()] = member
        dept_members = self.dept_members
        for dept_id in member.department:
            dept_members[dept_id].append(member)
        self.version += 1

    # -- department edits ------------------------------------------------------------------------

    def _department(self, dept_id: Any) -> Department:
        dept = self.departments.get(dept_id) if isinstance(dept_id, int) else None
        if dept is None:
            raise EntityNotFound(f"department {dept_id!r} not found")
        return dept

    def _check_sibling_name(self, parent_id: int, name: Any, exclude: int | None = None) -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise DirectoryError(f"department name must be 1-64 characters, got {name!r}")
        for sibling in self.children.get(parent_id, ()):
            if sibling != exclude and self.departments[sibling].name == name:
                raise EntityConflict(f"department {parent_id} already has a sub-department named {name!r}")
        return name

    def _height(self, dept_id: int) -> int:
        kids = self.children.get(dept_id, ())
        return 1 + max((self._height(k) for k in kids), default=0)

    def add_department(self, fields: dict[str, Any]) -> list[Change]:
        unknown = set(fields) - {"id", "name", "name_en", "parentid", "order"}
        if unknown:
            raise DirectoryError(f"unknown department fields: {sorted(unknown)}")
        parent = self._department(fields.get("parentid"))
        if self.depth(parent.id) + 1 > self.max_depth:
            raise DirectoryError(f"department tree may be at most {self.max_depth} levels deep")
        dept_id = fields.get("id", max(self.departments, default=0) + 1)
        if not isinstance(dept_id, int) or isinstance(dept_id, bool) or dept_id <= 0:
            raise DirectoryError(f"department id must be a positive integer, got {dept_id!r}")
        if dept_id in self.departments:
            raise EntityConflict(f"department {dept_id} already exists")
        dept = Department(
            id=dept_id,
            name=self._check_sibling_name(parent.id, fields.get("name")),
            name_en=str(fields.get("name_en", "")),
            parentid=parent.id,
            order=_uint32(fields.get("order", 0), "order"),
        )
        self.insert_department(dept)
        self.sort_children([parent.id])
        return [Change("create_party", dept)]

    def update_department(self, dept_id: int, changes: dict[str, Any]) -> list[Change]:
        """Rename, move (``parentid``), reorder or change leaders; returns the events WeCom would send."""
        unknown = set(changes) - set(DEPARTMENT_FIELDS)
        if unknown:
            raise DirectoryError(f"unknown department fields: {sorted(unknown)}")
        dept = self._department(dept_id)
        parent_id = changes.get("parentid", dept.parentid)
        if parent_id != dept.parentid:
            self._check_move(dept, parent_id)
        name = changes.get("name", dept.name)
        if name != dept.name or parent_id != dept.parentid:
            self._check_sibling_name(parent_id, name, exclude=dept.id)
        leaders = dept.leaders
        if "department_leader" in changes:
            leaders = self._resolve_leaders(dept, changes["department_leader"])
        order = _uint32(changes.get("order", dept.order), "order")

        event_fields = tuple(f for f, new in (("name", name), ("parentid", parent_id)) if getattr(dept, f) != new)
        flag_changes = [m for m in {*dept.leaders, *leaders} if (m in dept.leaders) != (m in leaders)]
        old_parent = dept.parentid
        dept.name, dept.name_en, dept.order = name, str(changes.get("name_en", dept.name_en)), order
        dept.leaders = leaders
        if parent_id != old_parent:
            self.children[old_parent].remove(dept.id)
            self.children[parent_id].append(dept.id)
            dept.parentid = parent_id
        if parent_id:
            self.sort_children([parent_id])
        party = [Change("update_party", dept, event_fields)] if event_fields else []
        users = [Change("update_user", m, ("is_leader_in_dept",)) for m in self._in_stable_order(flag_changes)]
        return party + users

    def _check_move(self, dept: Department, parent_id: Any) -> None:
        if dept.id == ROOT_ID:
            raise DirectoryError("the root department cannot be moved")
        parent = self._department(parent_id)
        if parent.id in self._walk(dept.id):
            raise DirectoryError(f"department {dept.id} cannot move under its own descendant {parent.id}")
        if self.depth(parent.id) + self._height(dept.id) > self.max_depth:
            raise DirectoryError(f"moving {dept.id} under {parent.id} exceeds {self.max_depth} levels")

    def _resolve_leaders(self, dept: Department, userids: Any) -> list[Member]:
        if not isinstance(userids, list):
            raise DirectoryError("department_leader must be a list of userids")
        members = set(self.members_in(dept.id))
        leaders = [self._member(u) for u in userids]
        outsiders = [m.userid for m in leaders if m not in members]
        if outsiders:
            raise DirectoryError(f"department leaders must be members of department {dept.id}: {outsiders}")
        return leaders

    def delete_department(self, dept_id: int) -> list[Change]:
        dept = self._department(dept_id)
        if dept.id == ROOT_ID:
            raise DirectoryError("the root department cannot be deleted")
        if self.children.get(dept.id):
            raise EntityConflict(f"department {dept.id} still has sub-departments")
        if self.members_in(dept.id):
            raise EntityConflict(f"department {dept.id} still has members")
        del self.departments[dept.id]
        self.children.pop(dept.id, None)
        del self.dept_members[dept.id]
        self.children[dept.parentid].remove(dept.id)
        for tag in self.tags.values():
            if dept.id in tag.parties:
                tag.parties.remove(dept.id)
        self.version += 1
        return [Change("delete_party", dept)]

    # -- member edits ----------------------------------------------------------------------------

    def _member(self, userid: Any) -> Member:
        member = self.user(userid) if isinstance(userid, str) else None
        if member is None:
            raise EntityNotFound(f"userid {userid!r} not found")
        return member

    def _in_stable_order(self, members: Iterable[Member]) -> list[Member]:
        return sorted(members, key=lambda m: m.userid.lower())

    def _check_userid(self, userid: Any, current: Member | None = None) -> str:
        if not isinstance(userid, str) or not _USERID.match(userid) or len(userid.encode()) > 64:
            raise DirectoryError(f"userid must be 1-64 bytes of letters, digits and _-@., got {userid!r}")
        holder = self.user(userid)
        if holder is not None and holder is not current:
            raise EntityConflict(f"userid {userid!r} already exists (userids are case-insensitive)")
        return userid

    def add_user(self, fields: dict[str, Any]) -> list[Change]:
        """Create a member from user/create-style fields; unset profile fields get WeCom's empty values."""
        userid = self._check_userid(fields.get("userid"))
        if not fields.get("name"):
            raise DirectoryError("name is required")
        if "department" not in fields:
            raise DirectoryError("department is required")
        profile = copy.deepcopy(PROFILE_DEFAULTS)
        profile["open_userid"] = "wo" + hashlib.sha256(f"{self.seed}:{userid}".encode()).hexdigest()[:30]
        member = Member(userid=userid, index=-1, department=(), order=(), main_department=0, profile=profile)
        self._apply_user_fields(member, {k: v for k, v in fields.items() if k != "userid"}, creating=True)
        return [Change("create_user", member)]

    def update_user(self, userid: str, changes: dict[str, Any]) -> list[Change]:
        """Edit, move (``department``) or rename (``new_userid``) a member; no event when nothing changed."""
        member = self._member(userid)
        old_userid = member.userid
        before = self.user_view(member)
        self._apply_user_fields(member, changes, creating=False)
        after = self.user_view(member)
        changed = tuple(k for k in after if k != "userid" and before[k] != after[k])
        renamed = old_userid != member.userid
        if not changed and not renamed:
            return []
        return [Change("update_user", member, changed, old_userid=old_userid if renamed else None)]

    def delete_user(self, userid: str) -> list[Change]:
        member = self._member(userid)
        del self.users[member.userid.lower()]
        for dept_id in member.department:
            self.dept_members[dept_id].remove(member)
            leaders = self.departments[dept_id].leaders
            if member in leaders:
                leaders.remove(member)
        for tag in self.tags.values():
            if member in tag.users:
                tag.users.remove(member)
        self.version += 1
        return [Change("delete_user", member)]

    def _apply_user_fields(self, member: Member, changes: dict[str, Any], *, creating: bool) -> None:
        """Validate everything first, then write, so a refused edit leaves the member untouched."""
        profile_keys = set(PROFILE_DEFAULTS)
        unknown = set(changes) - profile_keys - set(STRUCTURAL_USER_FIELDS) - {"new_userid"}
        if unknown:
            raise DirectoryError(f"unknown member fields: {sorted(unknown)}")
        new_userid = changes.get("new_userid", member.userid)
        if new_userid != member.userid:
            self._check_userid(new_userid, current=member)
        departments, orders, flags = self._planned_membership(member, changes)
        main = changes.get("main_department", member.main_department)
        if main not in departments:
            if "main_department" in changes:
                raise DirectoryError(f"main_department {main!r} is not one of the member's departments")
            main = departments[0]
        direct = member.direct_leader
        if "direct_leader" in changes:
            direct = self._resolve_direct_leaders(member, changes["direct_leader"])
        status = changes.get("status", 1)
        if status not in (1, 2, 4, 5):
            raise DirectoryError(f"status must be 1, 2, 4 or 5, got {status!r}")
        gender = changes.get("gender", "0")
        if gender not in ("0", "1", "2"):
            raise DirectoryError(f'gender must be "0", "1" or "2", got {gender!r}')

        profile_changes = {k: copy.deepcopy(v) for k, v in changes.items() if k in profile_keys}
        if profile_changes:
            member.profile = {**self.profile(member), **profile_changes}
        if not creating:
            del self.users[member.userid.lower()]
        member.userid = new_userid
        self.users[new_userid.lower()] = member
        self._move_member(member, departments, orders, flags)
        member.main_department = main
        member.direct_leader = direct
        self.version += 1

    def _planned_membership(
        self, member: Member, changes: dict[str, Any]
    ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """New (departments, orders, leader flags); unspecified orders/flags carry over per department."""
        departments = member.department
        if "department" in changes:
            departments = changes["department"]
            if not isinstance(departments, list | tuple) or not 1 <= len(departments) <= MAX_USER_DEPARTMENTS:
                raise DirectoryError(f"department must list 1-{MAX_USER_DEPARTMENTS} department ids")
            for dept_id in departments:
                self._department(dept_id)
            if len(set(departments)) != len(departments):
                raise DirectoryError("department lists a department twice")
            departments = tuple(departments)
        old_orders = dict(zip(member.department, member.order, strict=True))
        old_flags = dict(zip(member.department, self.leader_flags(member), strict=True))
        orders = tuple(old_orders.get(d, 0) for d in departments)
        if "order" in changes:
            orders = _aligned(changes["order"], len(departments), "order")
        flags = tuple(old_flags.get(d, 0) for d in departments)
        if "is_leader_in_dept" in changes:
            flags = _aligned(changes["is_leader_in_dept"], len(departments), "is_leader_in_dept")
            if any(f not in (0, 1) for f in flags):
                raise DirectoryError("is_leader_in_dept entries must be 0 or 1")
        return departments, orders, flags

    def _resolve_direct_leaders(self, member: Member, userids: Any) -> tuple[Member, ...]:
        if not isinstance(userids, list) or len(userids) > MAX_DIRECT_LEADERS:
            raise DirectoryError(f"direct_leader must be a list of at most {MAX_DIRECT_LEADERS} userids")
        leaders = tuple(self._member(u) for u in userids)
        if member in leaders:
            raise DirectoryError("a member cannot be their own direct leader")
        return leaders

    def _move_member(
        self, member: Member, departments: tuple[int, ...], orders: tuple[int, ...], flags: tuple[int, ...]
    ) -> None:
        for dept_id in member.department:
            if dept_id not in departments:
                self.dept_members[dept_id].remove(member)
        for dept_id in departments:
            if dept_id not in member.department:
                self.dept_members[dept_id].append(member)
        for dept_id in set(member.department) | set(departments):
            leaders = self.departments[dept_id].leaders
            lead = dept_id in departments and flags[departments.index(dept_id)] == 1
            if lead and member not in leaders:
                leaders.append(member)
            elif not lead and member in leaders:
                leaders.remove(member)
        member.department, member.order = departments, orders


def iter_rows(org: Org, start: tuple[int, int]) -> Iterator[tuple[tuple[int, int], Member, int]]:
    """(position, member, department) for every membership from ``start`` on; list_id pages over this."""
    members = org.member_list()
    member_pos, dept_pos = start
    while member_pos < len(members):
        member = members[member_pos]
        while dept_pos < len(member.department):
            yield (member_pos, dept_pos), member, member.department[dept_pos]
            dept_pos += 1
        member_pos, dept_pos = member_pos + 1, 0
