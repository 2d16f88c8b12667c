"""Where a callback's departments and members stand against the company's department scope.

WeCom calls back about the whole company; the tables hold the scope only. A department is in the
scope while its parent chain reaches an included department before an excluded one; the chain is
read from the stored departments, WeCom's department tree when the apply fetched it (one
``department/simplelist`` for a batch naming departments the tables do not hold), and this batch's
own moves. A member is in the scope while one of its departments is.

An entity that was in the scope and no longer is *leaves* it (applied: soft-deleted with
``out_of_scope``); events about one that is and stays outside are *set aside* (status
``out_of_scope``, with the reason): recorded, never applied. Tags are company-wide: a tag event keeps
only its members current in the scope and its departments in it (``TagPlacement``), and one naming
nothing in the scope is set aside.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from wecom.callbacks.fold import Group, Version, named_departments
from wecom.callbacks.queue import expanding, in_chunks
from wecom.errors import EventApplyError
from wecom.scope import Scope, keep_memberships
from wecom.store.sql import read_named_statements

CURRENT_SQL = "scope/current.sql"


def outside_reason(what: str, departments: list[int], scope: Scope) -> str:
    listed = ", ".join(map(str, sorted(departments)[:5])) + (", ..." if len(departments) > 5 else "")
    where = f" ({listed})" if departments else ""
    return f"{what}{where} outside the company's department scope ({scope.describe()}): recorded, not applied"


@dataclass(frozen=True)
class MemberPlacement:
    """Places members by their departments, once the batch's departments are written.

    ``stored``: every stored department with its ``out_of_scope`` flag; ``tree``: WeCom's department
    tree, when fetched, for departments the tables do not hold."""

    scope: Scope
    stored: Mapping[int, bool]
    tree: Mapping[int, int]

    def outside(self, department: int) -> bool:
        """Whether the department lies outside the scope: stored as out of it, or not stored and not placed in it
        by WeCom's tree (every department of the scope is stored; one in it that is not yet is held as unknown)."""
        if department in self.stored:
            return self.stored[department]
        return self.scope.contains(department, self.tree) is not True

    def restrict(self, versions: list[Version]) -> tuple[list[Version], frozenset[datetime]]:
        """Each version with its out-of-scope memberships taken out; a version left without one (or
        without a known department list) is the member leaving the scope: None, its time returned."""
        placed: list[Version] = []
        exits: set[datetime] = set()
        for stamp, state in versions:
            kept = None if state is None else keep_memberships(state, lambda d: not self.outside(d))
            if state is not None and kept is None:
                exits.add(stamp)
            placed.append((stamp, kept))
        return placed, frozenset(exits)

    def departments_of(self, state: Mapping[str, Any] | None) -> list[int]:
        """The departments a member state names (for the reason of an event set aside)."""
        return [int(d) for d in (state or {}).get("department") or []]


def department_parents(
    stored: Mapping[str, Mapping[str, Any]], tree: Mapping[int, int], moved: Mapping[int, int]
) -> dict[int, int]:
    """id -> parent: the stored departments, overridden by WeCom's tree (newer), then by this batch's moves."""
    parents = {int(k): int(r["parent_id"]) for k, r in stored.items() if r["parent_id"] is not None}
    return parents | dict(tree) | dict(moved)


@dataclass(frozen=True)
class ScopeNeeds:
    """What a scoped batch needs from WeCom before it is written: a fetch of each entity that may be
    entering the scope (its events alone rarely say enough to create it), and WeCom's department tree
    when the events name departments the tables do not hold."""

    entering: tuple[tuple[str, str], ...] = ()
    tree: bool = False


def scope_needs(conn: Connection, corp_id: str, users: list[Group], departments: list[Group]) -> ScopeNeeds:
    sql = read_named_statements(CURRENT_SQL, conn.dialect.name)
    stored = {
        int(d): bool(deleted) for d, deleted in conn.execute(text(sql["stored_departments"]), {"corp_id": corp_id})
    }
    current: set[str] = set()
    for chunk in in_chunks({g.key for g in users}):
        rows = conn.execute(expanding(sql["current_userids"], "keys"), {"corp_id": corp_id, "keys": chunk})
        current |= {userid for (userid,) in rows}
    named: set[int] = set()
    for group in users:
        with suppress(EventApplyError):
            named |= named_departments(group.ready)
    for group in departments:
        named.add(int(group.key))
        named |= {int(e.payload["ParentId"]) for e in group.ready if str(e.payload.get("ParentId", "")).isdigit()}
    entering = [("user", g.key) for g in users if g.key not in current and g.events[-1].change_type != "delete_user"]
    entering += [
        ("department", g.key)
        for g in departments
        if stored.get(int(g.key), True) and g.events[-1].change_type != "delete_party"
    ]
    return ScopeNeeds(tuple(entering), bool(named - stored.keys()))


@dataclass(frozen=True)
class TagPlacement:
    """Which members and departments a tag event names are in the scope, once the batch's members and
    departments are written: members current here (a member out of the scope is not), departments
    placed as for members."""

    members: frozenset[str]
    departments: MemberPlacement

    def inside(self, item: tuple[str, Any]) -> bool:
        kind, key = item
        return key in self.members if kind == "user" else not self.departments.outside(int(key))


def tag_placement(conn: Connection, corp_id: str, departments: MemberPlacement, userids: Iterable[str]) -> TagPlacement:
    sql = read_named_statements(CURRENT_SQL, conn.dialect.name)["current_userids"]
    current: set[str] = set()
    for chunk in in_chunks(set(userids)):
        current |= {userid for (userid,) in conn.execute(expanding(sql, "keys"), {"corp_id": corp_id, "keys": chunk})}
    return TagPlacement(frozenset(current), departments)
