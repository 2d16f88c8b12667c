"""A company's department scope: which subtrees of its WeCom directory the tables hold.

``"scope": {"include": [ids], "exclude": [ids]}`` in the company's ``wecom_companies`` entry. In
scope are the departments of the included subtrees (``include`` defaults to the root, 1) minus
those of the excluded subtrees; the members with at least one membership in them, with only those
memberships. A leaf module (standard library only): the companies configuration validates it, the
extraction resolves it over the department tree, and the callback applier asks it about single
departments.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wecom.errors import ScopeConfigError

ROOT_ID = 1
# A member record's lists aligned by position with its ``department`` list.
ALIGNED_WITH_DEPARTMENT = ("order", "is_leader_in_dept")
SCOPE_KEYS = ("include", "exclude")


@dataclass(frozen=True)
class Scope:
    """Included and excluded subtrees, as sorted tuples of distinct department ids."""

    include: tuple[int, ...] = (ROOT_ID,)
    exclude: tuple[int, ...] = ()

    @classmethod
    def from_option(cls, option: Mapping[str, Any] | None) -> Scope:
        """The scope from its JSON form; ``ScopeConfigError`` names the first wrong key or id."""
        if option is None:
            return WHOLE_COMPANY
        if not isinstance(option, Mapping):
            raise ScopeConfigError(f"scope: expected an object with {' and/or '.join(SCOPE_KEYS)}")
        for key in option:
            if key not in SCOPE_KEYS:
                raise ScopeConfigError(f"scope.{key}: unknown key; known keys are {', '.join(SCOPE_KEYS)}")
        ids = {key: _ids(option[key], f"scope.{key}") for key in SCOPE_KEYS if key in option}
        include = ids.get("include", (ROOT_ID,))
        if not include:
            raise ScopeConfigError("scope.include: must name at least one department (leave it out for the root)")
        both = sorted(set(include) & set(ids.get("exclude", ())))
        if both:
            raise ScopeConfigError(f"scope: department(s) {both} are both included and excluded")
        return cls(include=include, exclude=ids.get("exclude", ()))

    @property
    def whole(self) -> bool:
        """Whether this is the whole company (the default): nothing can be out of scope."""
        return self == WHOLE_COMPANY

    def as_option(self) -> dict[str, list[int]]:
        return {"include": list(self.include), "exclude": list(self.exclude)}

    def text(self) -> str | None:
        """The scope as stored on a run row: compact JSON, None for the whole company."""
        return None if self.whole else json.dumps(self.as_option(), separators=(",", ":"))

    def describe(self) -> str:
        if self.whole:
            return "the whole company"
        excluded = f" minus the subtrees of {_listed(self.exclude)}" if self.exclude else ""
        return f"the subtrees of department(s) {_listed(self.include)}{excluded}"

    def resolve(self, parents: Mapping[int, int]) -> ResolvedScope:
        """The departments in scope among ``parents`` (department id -> parent id; a tree or a forest).

        An included department missing from ``parents`` contributes nothing and is reported in
        ``missing``. The walk goes down from each included department, stopping at excluded ones, so a
        cycle in bad data cannot keep it going.
        """
        children: dict[int, list[int]] = defaultdict(list)
        for department, parent in parents.items():
            children[parent].append(department)
        excluded = set(self.exclude)
        inside: set[int] = set()
        for top in self.include:
            if top not in parents or top in excluded or top in inside:
                continue
            pending = [top]
            while pending:
                department = pending.pop()
                if department in inside or department in excluded:
                    continue
                inside.add(department)
                pending.extend(children.get(department, ()))
        tops = tuple(sorted(d for d in inside if parents[d] not in inside))
        missing = tuple(d for d in self.include if d not in parents)
        return ResolvedScope(frozenset(inside), tops, missing)

    def contains(self, department: int, parents: Mapping[int, int]) -> bool | None:
        """Whether one department is in scope, by its chain of ``parents`` up to an included or
        excluded department or the root: None when the chain breaks off at a department
        ``parents`` does not know (or loops)."""
        excluded, included = set(self.exclude), set(self.include)
        seen: set[int] = set()
        node = department
        while node not in seen:
            seen.add(node)
            if node in excluded:
                return False
            if node in included:
                return True
            parent = parents.get(node)
            if parent is None:
                return None
            if parent == 0:
                return False
            node = parent
        return None


WHOLE_COMPANY = Scope()


@dataclass(frozen=True)
class ResolvedScope:
    """A scope over one department tree: the departments in it, the tops of its subtrees (in scope,
    parent outside it) and the included departments the tree does not have."""

    departments: frozenset[int]
    tops: tuple[int, ...]
    missing: tuple[int, ...] = ()

    def restrict_member(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """A member record with only its in-scope memberships, or None when it has none.

        The lists aligned with ``department`` (order, leader flags) keep the same positions; one
        whose length differs from ``department`` is left as sent, for the transform to treat as
        misaligned. A record without a department list (only list walks of in-scope departments
        produce one) is kept whole.
        """
        if not isinstance(record.get("department"), list):
            return dict(record)
        return keep_memberships(record, lambda department: department in self.departments)


def keep_memberships(record: Mapping[str, Any], keep: Callable[[int], bool]) -> dict[str, Any] | None:
    """A member record (user/get shape) with only the departments ``keep`` accepts, the aligned lists at
    the same positions (one whose length differs from ``department`` is left as it is); None when no
    department is left."""
    departments = record.get("department")
    if not isinstance(departments, list):
        return None
    kept = [i for i, d in enumerate(departments) if (number := _as_int(d)) is not None and keep(number)]
    if not kept:
        return None
    if len(kept) == len(departments):
        return dict(record)
    restricted = dict(record)
    restricted["department"] = [departments[i] for i in kept]
    for name in ALIGNED_WITH_DEPARTMENT:
        values = record.get(name)
        if isinstance(values, list) and len(values) == len(departments):
            restricted[name] = [values[i] for i in kept]
    return restricted


def _ids(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ScopeConfigError(f"{where}: expected a list of department ids, got {type(value).__name__}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise ScopeConfigError(f"{where}: {item!r} is not an integer department id")
        if item < 1:
            raise ScopeConfigError(f"{where}: {item} is not a department id (WeCom's ids start at 1)")
    return tuple(sorted(set(value)))


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _listed(ids: Collection[int]) -> str:
    return ", ".join(map(str, ids))


def tops_without_parents(parents: Mapping[int, int]) -> tuple[int, ...]:
    """Departments whose parent the tree does not list (and is not 0): what an app secret whose
    visible range is a subtree sees of the company."""
    return tuple(sorted(d for d, p in parents.items() if p != 0 and p not in parents))


def parents_of(records: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """department id -> parent id from department records (``department/list``, ``simplelist``, export)."""
    parents: dict[int, int] = {}
    for record in records:
        department, parent = _as_int(record.get("id")), _as_int(record.get("parentid"))
        if department is not None and parent is not None:
            parents[department] = parent
    return parents


@dataclass(frozen=True)
class CurrentEntities:
    """What the tables hold as current (not deleted) for a company: department ids, and each member's
    department ids. A scoped extraction compares its walk with it to tell who left the scope."""

    departments: frozenset[int]
    members: Mapping[str, tuple[int, ...]]
