"""A walk within the company's department scope: what is staged, and who left the scope.

``ScopeFilter`` stands between the strategies and the staged files. It resolves the scope over the
departments a strategy listed, stages only the departments in scope and, of each member record,
only the in-scope memberships (a member with none is not staged). Strategies that read the whole
company anyway (export jobs, ``user/list_id``) are filtered this way; ``list`` walks only the
scope (``department/list`` per included subtree, ``user/list`` per in-scope department), so a
small scope in a large company costs little.

A complete scoped snapshot no longer holds some departments and members the tables hold as
current. ``confirm_exits`` tells the ones that left the scope (they still exist in WeCom, outside
it) from the ones that left the company, so the load marks them ``out_of_scope`` rather than
deleted. What the walk saw outside the scope answers most; the rest cost one
``department/simplelist`` and one ``user/get`` per member that left a department still in scope.
A member whose fate stays unknown makes the snapshot incomplete: nothing is deleted on a guess.

An app secret whose visible range is a subtree lists no root: with the whole company as the scope,
the snapshot is incomplete and the reason says to declare the visible range as the scope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wecom.errors import WeComError, WeComNoPrivilegeError, WeComNotFoundError, WeComScopeError
from wecom.scope import ROOT_ID, CurrentEntities, ResolvedScope, Scope, parents_of, tops_without_parents

log = logging.getLogger(__name__)

EXITS_FILE = "scope_exits.json"
Record = dict[str, Any]


@dataclass
class ScopeFilter:
    """One walk's scope: resolved once the departments are listed, then applied to every member record.

    ``current`` (what the tables hold) is only needed, and only read, for a scope other than the
    whole company. ``sees_members``: the strategy lists every member the secret sees, so a current
    member it saw outside the scope is known to exist.
    """

    scope: Scope
    current: CurrentEntities | None = None
    sees_members: bool = False
    resolved: ResolvedScope | None = None
    root_listed: bool = False
    tree_listed: bool = False
    outside_departments: set[int] = field(default_factory=set)
    outside_members: set[str] = field(default_factory=set)
    seen_current: set[str] = field(default_factory=set)
    exits: dict[str, list[Any]] = field(default_factory=lambda: {"departments": [], "users": []})
    visible_tops: tuple[int, ...] = ()
    staged_members: set[str] = field(default_factory=set)
    tag_members_outside: int = 0

    def place(self, records: list[Record], *, whole_tree: bool) -> list[Record]:
        """The in-scope department records among ``records``. ``whole_tree``: they are every department
        the secret sees (not only the included subtrees). Raises ``WeComScopeError`` when an included
        department is not among them."""
        parents = parents_of(records)
        self.tree_listed = whole_tree
        self.root_listed = ROOT_ID in parents
        if self.scope.whole:
            # Everything is staged, for the quality checks to see a broken tree. Without the root, the
            # secret is an app's whose visible range is a subtree: its lists start at the tops it sees.
            self.visible_tops = () if self.root_listed else tops_without_parents(parents)
            self.resolved = ResolvedScope(frozenset(parents), (ROOT_ID,) if self.root_listed else self.visible_tops)
            return records
        resolved = self.scope.resolve(parents)
        if resolved.missing:
            raise scope_error(resolved.missing, "is not in the department list WeCom answers for this secret")
        self.resolved = resolved
        if whole_tree:
            self.outside_departments = set(parents) - resolved.departments
        return [r for r in records if _department_id(r) in resolved.departments]

    @property
    def tops(self) -> tuple[int, ...]:
        """The departments that head the staged tree (their parents are not staged)."""
        return () if self.resolved is None else self.resolved.tops

    def incomplete_reason(self) -> str | None:
        if not self.visible_tops:
            return None
        listed = ", ".join(map(str, self.visible_tops[:10]))
        return (
            f"the secret sees only the subtrees of department(s) {listed} (its app's visible range), not the whole "
            f"company: nothing is deleted on such snapshots. Declare them as the company's scope "
            f'({{"scope": {{"include": [{listed}]}}}} in wecom_companies) to sync them completely'
        )

    def member(self, record: Record) -> Record | None:
        """The record restricted to its in-scope memberships; None (and noted) when it has none."""
        if self.resolved is None:
            raise RuntimeError("departments must be placed before members")
        if not self.narrows:
            return record
        restricted = self.resolved.restrict_member(record)
        userid = record.get("userid")
        if restricted is not None and isinstance(userid, str):
            self.staged_members.add(userid)
        if self.current is not None and userid in self.current.members:
            (self.seen_current if restricted is not None else self.outside_members).add(userid)
        return restricted

    @property
    def narrows(self) -> bool:
        """Whether the walk sees less than the whole company (a scope, or a secret's narrower visible range)."""
        return not (self.scope.whole and not self.visible_tops)

    def tag(self, record: Record) -> Record:
        """A tag record with only its members and departments in scope: the members this walk staged and
        the in-scope departments. Across the whole company every one is kept (a member the member walk
        did not see joined during it, and is staged by the next sync)."""
        if not self.narrows or self.resolved is None:
            return record
        restricted = dict(record)
        if isinstance(users := record.get("userlist"), list):
            restricted["userlist"] = [
                u for u in users if isinstance(u, Mapping) and u.get("userid") in self.staged_members
            ]
            self.tag_members_outside += len(users) - len(restricted["userlist"])
        if isinstance(parties := record.get("partylist"), list):
            restricted["partylist"] = [d for d in parties if _as_id(d) in self.resolved.departments]
            self.tag_members_outside += len(parties) - len(restricted["partylist"])
        return restricted

    def manifest(self) -> dict[str, Any]:
        return {
            "scope": self.scope.as_option() | {"tops": list(self.tops)},
            "scope_exits": {kind: len(ids) for kind, ids in self.exits.items()},
            "tag_members_outside_scope": self.tag_members_outside,
        }


def scope_error(departments: Iterable[int], problem: str, errcode: int | None = None) -> WeComScopeError:
    listed = ", ".join(map(str, departments))
    return WeComScopeError(
        f"the company's scope includes department(s) {listed}, which {problem}: deleted in WeCom, or outside the "
        "secret's visible range. Fix scope.include in the company's wecom_companies entry",
        errcode=errcode,
    )


def list_subtrees(client: Any, scope: Scope) -> list[Record]:
    """``department/list`` for each included subtree not already listed in an earlier answer (and
    ``department/get`` for a subtree top the answer leaves out): the scope, not the company."""
    listed: dict[int, Record] = {}
    for top in scope.include:
        if top in listed:
            continue
        try:
            for record in client.department_list(top):
                listed.setdefault(_department_id(record), record)
            if top not in listed:
                listed[top] = client.department_get(top)
        except (WeComNotFoundError, WeComNoPrivilegeError) as error:
            raise scope_error([top], f"department/list answers errcode {error.errcode} for", error.errcode) from None
    return list(listed.values())


def confirm_exits(
    client: Any,
    scoped: ScopeFilter,
    add_members: Callable[[Iterable[Record]], None],
    concurrent: Callable[..., Iterable[tuple[Any, Any]]],
) -> None:
    """Fill ``scoped.exits`` with the current departments and members that left the scope but not
    the company. A member ``user/get`` finds back in scope (it moved in during the walk) is staged
    through ``add_members``. ``concurrent`` maps a call over items (``extract.concurrent_map``: not
    found and no privilege come back as values, other failures raise and the task retries)."""
    current, resolved = scoped.current, scoped.resolved
    if scoped.scope.whole or current is None or resolved is None:
        return
    gone_departments = current.departments - resolved.departments
    if gone_departments and not scoped.tree_listed:
        parents = parents_of(client.department_simplelist())
        scoped.outside_departments = set(parents) - resolved.departments
        scoped.root_listed = ROOT_ID in parents
    outside = gone_departments & scoped.outside_departments
    unknown = gone_departments - outside
    if unknown and not scoped.root_listed:
        # Outside the secret's visible range the list is silent: 60011 says the department exists.
        for department, answer in concurrent(client.department_get, sorted(unknown)):
            if not isinstance(answer, WeComNotFoundError):
                outside.add(department)
    gone_members = set(current.members) - scoped.seen_current
    left = gone_members & scoped.outside_members
    if not (scoped.sees_members and scoped.root_listed):
        # Members that went with their departments need no call; the others moved, or left WeCom.
        existing = scoped.outside_departments | outside
        left |= {m for m in gone_members if current.members[m] and set(current.members[m]) <= existing}
        for userid, answer in concurrent(client.user_get, sorted(gone_members - left)):
            if isinstance(answer, WeComNotFoundError):
                continue
            if not isinstance(answer, WeComError) and resolved.restrict_member(answer) is not None:
                add_members([answer])
            else:
                left.add(userid)
    scoped.exits = {"departments": sorted(outside), "users": sorted(left)}
    if outside or left:
        log.info("%d departments and %d members left the scope (they still exist in WeCom)", len(outside), len(left))


def _department_id(record: Mapping[str, Any]) -> int | None:
    try:
        return _as_id(record["id"])
    except KeyError:
        return None


def _as_id(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
