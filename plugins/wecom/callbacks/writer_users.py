"""Decide and fold member events, then hand the versions to ``writer_user_rows``.

Per member (its events grouped under its latest userid), in this order:

1. superseded when its stored row was observed after every event (a newer snapshot);
2. failed when the fetch that completes it failed for a reason worth retrying;
3. held (failed with the reason, dead after the last attempt) when a rename targets another
   live member's userid, or an event places it in a department not known here: the event
   that resolves it (a delete, a create_party) may still be on its way;
4. otherwise its renames are moved, and its events are folded from the stored state (or, for a
   late event, from the state the history holds just before it) and written.

With a department scope, each folded version keeps only its in-scope memberships: a version left
with none is the member leaving the scope (soft-deleted with ``out_of_scope``), and the events of
a member that is and stays outside it are set aside (``out_of_scope``, with the reason). A member
coming into the scope is created, or revived, from its events and the fetch the applier made.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text

from wecom.callbacks.fold import FetchFailed, Group, fold_user, named_departments
from wecom.callbacks.queue import expanding, in_chunks
from wecom.callbacks.scope_placement import MemberPlacement, outside_reason
from wecom.callbacks.writer import WriteStep, before, not_before
from wecom.callbacks.writer_renames import NEW_USERID_TAKEN, move_renamed, sources, taken_new_userid
from wecom.callbacks.writer_user_rows import Folded, write_users
from wecom.directory.pii import KEEP_ALL, PiiPolicy
from wecom.directory.transform import USER_FIELDS
from wecom.errors import EventApplyError
from wecom.store.sql import parse_db_time

# users table column -> user/get field, to turn a stored row back into a payload (extattr is JSON text).
_USER_COLUMN_FIELDS = {column: field for column, field in USER_FIELDS.items() if column != "extattr"}


def apply_users(step: WriteStep, groups: list[Group], pii: PiiPolicy = KEEP_ALL) -> None:
    """Decide each member's events and write the applied ones (after the departments: a create_party
    in the same batch makes its department known)."""
    if not groups:
        return
    keys = {g.key for g in groups}
    stored = {key: base["row"] for key, base in _bases(step, keys | sources(groups)).items()}
    known_departments = _department_ids(step)
    placement = None
    if not step.scope.whole:
        placement = MemberPlacement(step.scope, known_departments, step.tree)
    applying: list[Group] = []
    for group in groups:
        row = stored.get(group.key)
        observed = None if row is None else parse_db_time(row["observed_at"])
        got = step.fetched.get(("user", group.key))
        if observed is not None and before(group.stamp, observed):
            step.outcome.settle("superseded", group.events)
        elif isinstance(got, FetchFailed):
            step.outcome.fail(got.message, group.events)
        elif taken_new_userid(group, stored):
            step.outcome.fail(NEW_USERID_TAKEN, group.events)
        elif reason := _unknown_departments(group, known_departments, placement, fetched=isinstance(got, dict)):
            step.outcome.fail(reason, group.events)
        else:
            applying.append(group)
    for group in applying:
        move_renamed(step, group, stored)
    bases = _bases(step, {g.key for g in applying})
    folded = _fold(step, applying, bases, placement)
    if folded:
        write_users(step, folded, bases, [g for g in applying if g.key in folded], pii)


def _unknown_departments(
    group: Group, known: Mapping[int, bool], placement: MemberPlacement | None, *, fetched: bool
) -> str | None:
    """The hold reason when the group's events place the member in departments not known here (a
    fetched answer is WeCom's present state and needs no check; one known outside the scope is known)."""
    try:
        named = named_departments(group.ready) - known.keys()
        unknown = sorted(d for d in named if placement is None or not placement.outside(d))
    except EventApplyError:
        return None  # the fold reports the malformed list
    if fetched or not unknown:
        return None
    listed = ", ".join(map(str, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
    return f"Department names department(s) not known here ({listed}): not applied"


def _fold(
    step: WriteStep, groups: list[Group], bases: Mapping[str, Mapping[str, Any]], placement: MemberPlacement | None
) -> dict[str, Folded]:
    """Each member's versions from its stored state (read after the renames moved it), placed in the scope."""
    replaying = [g for g in groups if g.replaying]
    since = min((g.events[0].create_time for g in replaying), default=None)
    earlier = {} if since is None else _states_before(step, [g.key for g in replaying], since, bases)
    folded: dict[str, Folded] = {}
    for group in groups:
        base = bases.get(group.key)
        observed = None if base is None else parse_db_time(base["row"]["observed_at"])
        try:
            start, start_deleted = base and base["payload"], base is not None and base["row"]["is_deleted"]
            if group.replaying and group.key in earlier and since == group.events[0].create_time:
                start, start_deleted = earlier[group.key], earlier[group.key] is None
            got = step.fetched.get(("user", group.key))
            versions, said_leaders = fold_user(group.key, start, start_deleted, group.events, got)
        except EventApplyError as error:
            step.outcome.fail(f"member event: {error}", group.events)
            continue
        existed = base is not None and not base["row"]["is_deleted"]
        versions = not_before(versions, observed)
        exits: frozenset[datetime] = frozenset()
        if placement is not None:
            wanted = [s for _, s in versions if s is not None]
            versions, exits = placement.restrict(versions)
            if not existed and all(state is None for _, state in versions) and (exits or _out_of_scope(base)):
                named = placement.departments_of(wanted[-1] if wanted else None)
                step.outcome.set_aside(outside_reason(f"member {group.key} in", named, step.scope), group.events)
                continue
        step.outcome.settle("applied", group.events)
        if existed or any(state is not None for _, state in versions):
            folded[group.key] = (versions, said_leaders, exits)
    return folded


def _out_of_scope(base: Mapping[str, Any] | None) -> bool:
    return base is not None and bool(base["row"]["out_of_scope"])


def _department_ids(step: WriteStep) -> dict[int, bool]:
    """Every department stored for the corp, deleted ones included, with whether it is out of the scope."""
    rows = step.conn.execute(text(step.sql("users")["select_department_ids"]), {"corp_id": step.corp_id})
    return {int(r[0]): bool(r[1]) for r in rows}


def _bases(step: WriteStep, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Current rows as {userid: {"row": ..., "memberships": {dept: row}, "leaders": [...], "payload": ...}}."""
    sql = step.sql("users")
    bases: dict[str, dict[str, Any]] = {}
    for chunk in in_chunks(set(keys)):
        params = {"corp_id": step.corp_id, "keys": chunk}
        for row in step.conn.execute(expanding(sql["select_current"], "keys"), params).mappings():
            bases[row["userid"]] = {"row": dict(row), "memberships": {}, "leaders": []}
        for row in step.conn.execute(expanding(sql["select_memberships"], "keys"), params).mappings():
            bases[row["userid"]]["memberships"][int(row["department_id"])] = dict(row)
        for row in step.conn.execute(expanding(sql["select_direct_leaders"], "keys"), params).mappings():
            bases[row["userid"]]["leaders"].append(row["leader_userid"])
    for base in bases.values():
        base["payload"] = user_payload(base["row"], base["memberships"].values(), base["leaders"])
    return bases


def _states_before(
    step: WriteStep, keys: list[str], since: datetime, bases: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any] | None]:
    """Each member's user/get-shaped state just before ``since`` as the history holds it (None: it
    did not exist then); members without history are left out. Direct leaders are not historized:
    today's are used."""
    sql = step.sql("users")
    params = {"corp_id": step.corp_id, "since": step.t(since)}
    known: set[str] = set()
    rows: dict[str, dict[str, Any]] = {}
    memberships: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in in_chunks(set(keys)):
        chunk_params = params | {"keys": chunk}
        known |= {r[0] for r in step.conn.execute(expanding(sql["select_history_known"], "keys"), chunk_params)}
        for row in step.conn.execute(expanding(sql["select_history_before"], "keys"), chunk_params).mappings():
            rows[row["userid"]] = dict(row)
        for row in step.conn.execute(expanding(sql["select_history_memberships_before"], "keys"), chunk_params):
            memberships[row.userid].append(dict(row._mapping))
    leaders = {key: bases[key]["leaders"] if key in bases else [] for key in known}
    return {key: user_payload(rows[key], memberships[key], leaders[key]) if key in rows else None for key in known}


def user_payload(
    row: Mapping[str, Any], memberships: Iterable[Mapping[str, Any]], leaders: Iterable[str]
) -> dict[str, Any]:
    """A stored member (row, membership rows, direct leaders) in the user/get shape that events fold into."""
    payload = {f: row[c] for c, f in _USER_COLUMN_FIELDS.items() if row[c] is not None}
    if row["extattr"] is not None:
        payload["extattr"] = json.loads(row["extattr"])
    links = sorted(memberships, key=lambda m: m["department_id"])
    payload["department"] = [int(m["department_id"]) for m in links]
    payload["order"] = [m["sort_order"] for m in links]
    payload["is_leader_in_dept"] = [None if m["is_leader"] is None else int(m["is_leader"]) for m in links]
    payload["direct_leader"] = sorted(leaders)
    return payload
