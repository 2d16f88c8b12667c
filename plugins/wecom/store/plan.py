"""What a snapshot merge does (or would do), and the rule that stops one that deletes too much.

Plain data and pure rules, shared by the merge (which fills the plans), the run
records (which store them) and the DAG (which reads ``LoadResult.as_dict``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from wecom.runs import CHANGES, Change, RunStatus
from wecom.tables import TABLES, history_table

SOFT_DELETED = frozenset({"wecom_departments", "wecom_users", "wecom_tags"})
# What the mass-deletion guard weighs: the entities, and tag memberships (of which only those removed while
# tag and member stay count, ``TablePlan.guarded``: the rest is weighed with the tag or member that goes).
GUARDED = (*sorted(SOFT_DELETED), "wecom_tag_users", "wecom_tag_departments")
# Tables whose changes count as drift: what callbacks should already have applied.
DRIFT_TABLES = (
    "wecom_departments",
    "wecom_users",
    "wecom_user_departments",
    "wecom_tag_users",
    "wecom_tag_departments",
)


@dataclass
class TablePlan:
    """What a merge does (or would do) to one table, with a few sample ids per change."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    revived: int = 0
    left_scope: int = 0
    current: int = 0
    guarded: int | None = None
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return self.inserted + self.updated + self.deleted + self.revived + self.left_scope

    @property
    def removed(self) -> int:
        """Rows that stop being current: deleted from WeCom or out of the scope."""
        return self.deleted + self.left_scope

    @property
    def guarded_deletions(self) -> int:
        """The removals the mass-deletion guard weighs (deleted or out of the scope, all of them unless the
        table says otherwise)."""
        return self.removed if self.guarded is None else self.guarded


@dataclass(frozen=True)
class LoadOptions:
    """Per-run switches: the dry run and the mass-deletion guard (share of current rows, or a count)."""

    dry_run: bool = False
    allow_mass_delete: bool = False
    max_delete_share: float = 0.10
    max_delete_count: int | None = None
    sample_size: int = 10


@dataclass
class LoadResult:
    status: str
    plans: dict[str, TablePlan]
    rows_written: int
    message: str
    drift: dict[str, dict[str, int]] | None = None
    # Field groups this snapshot lost against the previous one (alert once), and the advice for them.
    newly_degraded: list[str] = field(default_factory=list)
    rights_advice: str | None = None
    # Every field group this snapshot could not read that an earlier one could (stored values kept).
    degraded: list[str] = field(default_factory=list)

    @property
    def drift_total(self) -> int | None:
        return drift_total(self.drift)

    def changed_tables(self) -> dict[str, dict[str, int]]:
        """What the load changed, per table (``changed_tables``); nothing unless it wrote."""
        return changed_tables(self.plans) if self.status in WRITING_STATUSES else {}

    def plan_json(self) -> str | None:
        if not self.plans:
            return None
        return json.dumps({name: asdict(plan) for name, plan in self.plans.items()}, sort_keys=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rows_written": self.rows_written,
            "message": self.message,
            "drift_total": self.drift_total,
            "newly_degraded": self.newly_degraded,
            "tables": {
                name: {k: v for k, v in asdict(plan).items() if k != "samples"} for name, plan in self.plans.items()
            },
        }


# Load outcomes that wrote the tables: a dry run, a stale snapshot and a tripped guard change nothing.
WRITING_STATUSES = frozenset({RunStatus.SUCCESS, RunStatus.PARTIAL})


def changed_tables(counts: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Each directory table with changes, mapped to its four change counts (all four, zeros included):
    ``counts`` holds, per table, anything with ``inserted``/``updated``/``deleted``/``revived``. Rows
    that left the department scope (``left_scope``) are soft-deleted too and count as ``deleted``. A
    history table carries the changes of the table it versions (each one wrote a version)."""
    changed: dict[str, dict[str, int]] = {}
    for table, spec in TABLES.items():
        row = counts.get(table)
        four = {change: getattr(row, change, 0) for change in CHANGES if change != Change.LEFT_SCOPE}
        four[Change.DELETED] += getattr(row, Change.LEFT_SCOPE, 0)
        if any(four.values()):
            changed[table] = four
            if spec.history:
                changed[history_table(table)] = dict(four)
    return changed


def drift_total(drift: Mapping[str, Mapping[str, int]] | None) -> int | None:
    return None if drift is None else sum(sum(counts.values()) for counts in drift.values())


def guard_violation(plans: Mapping[str, TablePlan], options: LoadOptions) -> str | None:
    """Why this plan removes too much, or None; the message says how to proceed.

    Rows leaving the department scope count like deletions: a scope change, or a department moved
    out of it, that takes more than the limit needs ``allow_mass_delete`` once, like a mass deletion.
    """
    if options.allow_mass_delete:
        return None
    problems = []
    for name in GUARDED:
        plan = plans.get(name, TablePlan())
        deleted = plan.guarded_deletions
        limit = options.max_delete_share * plan.current
        if options.max_delete_count is not None:
            limit = min(limit, options.max_delete_count)
        if deleted and deleted > limit:
            scoped = f" ({plan.deleted} deleted, {plan.left_scope} out of the scope)" if plan.left_scope else ""
            entity = name.removeprefix("wecom_")
            problems.append(f"{deleted} of {plan.current} {entity}{scoped} (limit {int(limit)})")
    if not problems:
        return None
    return (
        "mass-deletion guard: this snapshot would soft-delete "
        + " and ".join(problems)
        + "; nothing was changed. If WeCom really lost them, trigger the DAG again with conf "
        '{"allow_mass_delete": true} (once), or check the secret\'s visible scope and the API answers first.'
    )


def plan_counts(plan: TablePlan) -> dict[str, int]:
    """The non-zero change counts of one table's plan."""
    return {change: getattr(plan, change) for change in CHANGES if getattr(plan, change)}
