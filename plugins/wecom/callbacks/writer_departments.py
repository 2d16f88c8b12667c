"""Write folded department events to ``wecom_departments`` (and leaders, closure, history).

path, depth and the closure derive from the whole tree, so after the changed departments are
placed the tree is derived again exactly as a full sync does (``transform_departments``) and only
rows whose derived values differ are rewritten: a move re-paths every descendant. A move that
would make a cycle is held back (its events fail with the reason, and die after the last attempt):
the move that resolves it may still be on its way.

With a department scope (``wecom.callbacks.scope_placement``), a department moved out of it leaves
it with its stored subtree: soft-deleted with ``out_of_scope``, the memberships in them ended and
the members left without a membership in the scope leaving too, with their tag memberships and custom
fields. A deleted department, or one that left the scope, no longer holds its tags. One moved into it is created (or
revived) from its events and fetch; its subtree and members follow with the next full sync. Events
about departments outside the scope are set aside.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import text

from wecom.callbacks.fold import FetchFailed, Group, fold_department
from wecom.callbacks.scope_placement import department_parents, outside_reason
from wecom.callbacks.writer import WriteStep, before, not_before, plain_rows, records
from wecom.directory.transform import TABLE_COLUMNS, transform_departments
from wecom.errors import EventApplyError
from wecom.store.sql import parse_db_time

_COLUMNS = [c for c in TABLE_COLUMNS["wecom_departments"] if c != "corp_id"]
# department id -> (state after the events or None when deleted, last known content, observation time)
States = dict[str, tuple[dict[str, Any] | None, dict[str, Any], datetime]]


def apply_departments(step: WriteStep, groups: list[Group]) -> None:
    """Decide each department's events (superseded, failed, held, applied) and write the applied ones."""
    if not groups:
        return
    sql = step.sql("departments")
    current = {
        str(r["department_id"]): dict(r)
        for r in step.conn.execute(text(sql["select_all"]), {"corp_id": step.corp_id}).mappings()
    }
    states: States = {}
    applied: dict[str, Group] = {}
    for group in groups:
        row = current.get(group.key)
        observed = None if row is None else parse_db_time(row["observed_at"])
        if observed is not None and before(group.stamp, observed):
            step.outcome.settle("superseded", group.events)
            continue
        got = step.fetched.get(("department", group.key))
        if isinstance(got, FetchFailed):
            step.outcome.fail(got.message, group.events)
            continue
        base = None if row is None else department_payload(row)
        try:
            state, content = fold_department(base, row is not None and row["is_deleted"], group.events, got)
        except EventApplyError as error:
            if row is None and not step.scope.whole:  # not stored, so not in the scope: nothing to place it by
                step.outcome.set_aside(outside_reason(f"department {group.key} is", [], step.scope), group.events)
            else:
                step.outcome.fail(f"department event: {error}", group.events)
            continue
        applied[group.key] = group
        if content is not None and (state is not None or row is None or not row["is_deleted"]):
            states[group.key] = (state, content, not_before([(group.stamp, state)], observed)[0][0])
    _hold_cycles(step, states, applied, current)
    exits = set() if step.scope.whole else _place(step, states, applied, current)
    for group in applied.values():
        step.outcome.settle("applied", group.events)
    if states:
        _write(step, states, current, exits)


def _place(step: WriteStep, states: States, applied: dict[str, Group], current: dict[str, Any]) -> set[str]:
    """Departments that leave the scope (returned, their states made deletions) and events set aside."""
    scope, gone = step.scope, {int(k) for k, (state, _, _) in states.items() if state is None}
    moved = {int(k): int(state["parentid"]) for k, (state, _, _) in states.items() if state is not None}
    parents = department_parents(current, step.tree, moved)
    exits: dict[str, datetime] = {}
    for key, (state, content, stamp) in list(states.items()):
        row = current.get(key)
        if state is None:
            if row is not None and row["out_of_scope"]:
                del states[key]
                step.outcome.set_aside(outside_reason(f"department {key} is", [], scope), applied.pop(key).events)
            continue
        # In the scope, or not: a chain that breaks off at a department neither the tables nor WeCom's tree
        # hold leads outside it (every department of the scope is stored; a full sync heals the rare miss).
        if scope.contains(int(key), parents):
            continue
        if row is not None and not row["is_deleted"]:
            exits[key] = stamp
            states[key] = (None, content, stamp)
        else:
            del states[key]
            reason = outside_reason(f"department {key} under", [int(state["parentid"])], scope)
            step.outcome.set_aside(reason, applied.pop(key).events)
    for key, row in current.items():  # the stored subtrees of the departments that left go with them
        if key in states or row["is_deleted"] or int(key) in gone or scope.contains(int(key), parents) is not False:
            continue
        node, stamp = int(key), max(exits.values(), default=step.now)
        while (node := parents.get(node, 0)) and str(node) not in exits:
            pass
        states[key] = (None, department_payload(row), exits.get(str(node), stamp))
        exits[key] = states[key][2]
    return set(exits)


def _hold_cycles(step: WriteStep, states: States, applied: dict[str, Group], current: dict[str, Any]) -> None:
    """Take back the moves that would put a department under itself, until the tree has no cycle."""
    while True:
        parents = {
            int(k): int(r["parent_id"])
            for k, r in current.items()
            if not r["is_deleted"] and r["parent_id"] is not None
        }
        for key, (state, _, _) in states.items():
            if state is None:
                parents.pop(int(key), None)
            else:
                parents[int(key)] = int(state["parentid"])
        moved = {
            department
            for department in cycle_members(parents)
            if str(department) in states and _moved(states[str(department)][0], current.get(str(department)))
        }
        if not moved:
            return
        for department in moved:
            parent = parents[department]
            reason = f"ParentId {parent} would put department {department} under itself (a cycle): not applied"
            step.outcome.fail(reason, applied.pop(str(department)).events)
            del states[str(department)]


def cycle_members(parents: Mapping[int, int]) -> set[int]:
    """Departments whose parent chain comes back to themselves."""
    on_cycle: set[int] = set()
    settled: set[int] = set()
    for start in parents:
        path: list[int] = []
        node: int | None = start
        while node is not None and node not in settled and node not in path:
            path.append(node)
            node = parents.get(node)
        if node is not None and node in path:
            on_cycle |= set(path[path.index(node) :])
        settled |= set(path)
    return on_cycle


def _moved(state: Mapping[str, Any] | None, row: Mapping[str, Any] | None) -> bool:
    return state is not None and (row is None or row["is_deleted"] or int(row["parent_id"]) != state["parentid"])


def _write(step: WriteStep, states: States, current: dict[str, dict[str, Any]], exits: set[str]) -> None:
    """Write the changed departments, then re-derive path, depth and closure for the whole tree.

    The tree holds the live departments only; one deleted before it was ever stored gets its
    row from the tree it last stood in. ``exits`` left the department scope rather than WeCom."""
    corp_id = step.corp_id
    tree = {key: department_payload(row) for key, row in current.items() if not row["is_deleted"]}
    # Paths start at the root and, with a scope, at its tops (those the last full sync placed at depth 0).
    tops = set(step.scope.include) | {int(k) for k, r in current.items() if not r["is_deleted"] and r["depth"] == 0}
    for key, (state, _, _) in states.items():
        if state is None:
            tree.pop(key, None)
        else:
            tree[key] = state | {"id": int(key)}
    departments, _, closure = _department_tree(tree, corp_id, tops)
    new_rows = records(departments, "department_id")
    unstored = {key: content for key, (state, content, _) in states.items() if state is None and key not in current}
    if unstored:
        with_unstored = tree | {key: content | {"id": int(key)} for key, content in unstored.items()}
        new_rows |= {
            k: v
            for k, v in records(_department_tree(with_unstored, corp_id, tops)[0], "department_id").items()
            if str(k) in unstored
        }
    latest = max(stamp for _, _, stamp in states.values())
    stage, reshaped, leaders = [], [], []
    for key, (state, _, stamp) in states.items():
        old = current.get(key)
        t = step.t(stamp)
        if state is None:
            source = new_rows[int(key)] if old is None else old
            row = {c: source[c] for c in _COLUMNS}
            left = key in exits
            stage.append(
                row
                | {"is_deleted": True, "out_of_scope": left, "deleted_at": t, "replace_leaders": True, "observed_at": t}
            )
            if old is not None:
                step.departments.left_scope += left
                step.departments.deleted += not left
            step.close("department", {"department_id": int(key)}, t, ended_by="out_of_scope" if left else "deleted")
            continue
        row = new_rows[int(key)]
        has_leaders = "department_leader" in state
        stage.append(
            row
            | {
                "is_deleted": False,
                "out_of_scope": False,
                "deleted_at": None,
                "replace_leaders": has_leaders,
                "observed_at": t,
            }
        )
        leaders += [
            {"corp_id": corp_id, "department_id": int(key), "userid": u} for u in state.get("department_leader", [])
        ]
        if old is None:
            step.departments.inserted += 1
        elif old["is_deleted"]:
            step.departments.revived += 1
        elif old["row_hash"] != row["row_hash"]:
            step.departments.updated += 1
        if old is None or old["is_deleted"] or old["row_hash"] != row["row_hash"]:
            step.open("department", row, t)
    for department_id, row in new_rows.items():
        old = current.get(str(department_id))
        if str(department_id) in states or old is None or old["is_deleted"] or old["row_hash"] == row["row_hash"]:
            continue
        reshaped.append({k: row[k] for k in ("department_id", "path", "depth", "row_hash")} | {"corp_id": corp_id})
        step.departments.updated += 1
        step.open("department", row, step.t(latest))
    for row in stage:
        row["corp_id"] = corp_id
    step.write_history()
    step.recreate_stages("departments", ("", "leaders_", "tree_", "closure_"))
    step.stage("stage_delta_departments", stage)
    step.stage("stage_delta_department_leaders", leaders)
    step.stage("stage_delta_department_tree", reshaped)
    step.stage("stage_delta_department_closure", _closure_changes(step, closure))
    step.run("departments", "upsert", "delete_stale_leaders", "insert_leaders")
    if exits:
        _members_leave(step)
    step.run(
        "departments",
        "delete_memberships_of_deleted",
        "close_tag_departments_of_deleted",
        "delete_tag_departments_of_deleted",
        "update_tree",
        "delete_closure",
        "upsert_closure",
    )


def _closure_changes(step: WriteStep, closure: pd.DataFrame) -> list[dict[str, Any]]:
    """The closure rows that differ from the table: distance None means "remove"."""
    sql = step.sql("departments")
    old = {
        (int(r["ancestor_id"]), int(r["descendant_id"])): int(r["distance"])
        for r in step.conn.execute(text(sql["select_closure"]), {"corp_id": step.corp_id}).mappings()
    }
    new = {(int(r["ancestor_id"]), int(r["descendant_id"])): int(r["distance"]) for r in plain_rows(closure)}
    return [
        {"corp_id": step.corp_id, "ancestor_id": a, "descendant_id": d, "distance": new.get((a, d))}
        for (a, d) in old.keys() | new.keys()
        if old.get((a, d)) != new.get((a, d))
    ]


def _members_leave(step: WriteStep) -> None:
    """The memberships in departments that left the scope end with them, and the members left without a
    membership in the scope leave it too (``deltas/departments.sql``)."""
    step.recreate_stages("departments", ("leavers_",))
    step.run("departments", "find_leavers")
    left = step.conn.execute(text(step.sql("departments")["count_leavers"])).scalar_one()
    step.run(
        "departments",
        "close_leaver_versions",
        "leave_scope",
        "drop_leaver_direct_leaders",
        "drop_leaver_led_departments",
        "close_memberships_leaving_scope",
        "close_leaver_tag_memberships",
        "drop_leaver_tag_memberships",
        "close_leaver_attributes",
        "drop_leaver_attributes",
    )
    step.users.left_scope += left


def _department_tree(tree: Mapping[str, Mapping[str, Any]], corp_id: str, tops: set[int]) -> tuple[pd.DataFrame, ...]:
    """Departments with path, depth and hash, and the closure, exactly as a full sync derives them."""
    raw = pd.DataFrame(list(tree.values()), columns=["id", "name", "name_en", "parentid", "order"])
    return transform_departments(raw, corp_id, tops)


def department_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored department in the department/get shape that events fold into."""
    return {
        "id": int(row["department_id"]),
        "name": row["name"],
        "name_en": row["name_en"],
        "parentid": row["parent_id"],
        "order": row["sort_order"],
    }
