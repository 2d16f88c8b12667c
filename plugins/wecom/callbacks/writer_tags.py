"""Decide and write ``update_tag`` events: a tag's members and departments join or leave it, with history.

Per tag (its events grouped by TagId):

1. events older than the tag's stored observation (a snapshot or fetch saw the tag after them)
   are superseded;
2. a tag not known here (or deleted) was fetched when the secret may (``apply``): the answer is
   WeCom's present membership, 40068 means the tag is gone (its events change nothing), and a
   refused or impossible fetch creates or revives the tag from the ids the events carry (no name);
3. otherwise each member and department plays the changes of the events naming it, the applied
   ones since the oldest ready event included, over those later than its last recorded change
   (``fold_tags.transitions``): events apply in any arrival order, each flip a history version.

With a department scope, only the members and departments in it are written
(``scope_placement.TagPlacement``); an event naming nothing in the scope ends ``out_of_scope``.

Rows are normalized with the full sync's transform, so hashes match a snapshot's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from wecom.callbacks.fold import Event, FetchFailed, Gone, Group
from wecom.callbacks.fold_tags import Item, ItemChange, answer_changes, item_changes, transitions
from wecom.callbacks.queue import expanding, in_chunks
from wecom.callbacks.scope_placement import MemberPlacement, TagPlacement, tag_placement
from wecom.callbacks.writer import SQL_FILES, WriteStep, before, plain_rows
from wecom.directory.tags import transform_tags
from wecom.errors import EventApplyError
from wecom.store.sql import parse_db_time, read_named_statements

# Item kind -> (its history kind, its column, its stage table).
_LINKS = {
    "user": ("tag_user", "userid", "stage_delta_tag_users"),
    "party": ("tag_department", "department_id", "stage_delta_tag_departments"),
}


def apply_tags(step: WriteStep, groups: list[Group], renames: list[Event]) -> None:
    """Decide each tag's events and write the tags, memberships and history they change; members renamed
    after an event (``renames``) are named by their new userid."""
    if not groups:
        return
    stored = _stored(step, [int(g.key) for g in groups])
    placement = None if step.scope.whole else _placement(step, groups, renames)
    new_tags: dict[int, NewTag] = {}
    changes: dict[int, dict[Item, list[ItemChange]]] = {}
    for group in groups:
        tag_id = int(group.key)
        row = stored["tags"].get(tag_id)
        observed = _observed(row)
        late = [e for e in group.events if observed is not None and before(e.create_time, observed)]
        step.outcome.settle("superseded", late)
        events = [e for e in group.events if e not in late]  # the applied ones are decided again with them
        if placement is not None:
            outside = [e for e in events if _only_outside(e, renames, placement)]
            step.outcome.set_aside(_OUTSIDE, outside)
            events = [e for e in events if e not in outside]
        if not any(e.ready for e in events):
            continue
        got = step.fetched.get(("tag", group.key))
        if isinstance(got, FetchFailed):
            step.outcome.fail(got.message, events)
            continue
        current = stored["links"][tag_id]
        try:
            if isinstance(got, Gone):
                decided: dict[Item, list[ItemChange]] = {}
            elif isinstance(got, dict):
                stamp = max(e.create_time for e in events)
                decided = answer_changes(got, current, stamp)
                new_tags[tag_id] = NewTag(got.get("tagname", row and row["tag_name"]), stamp, stamp)
            else:
                decided = transitions(item_changes(events, renames), current, stored["recorded"][tag_id])
                if row is None or row["is_deleted"]:
                    first = min(e.create_time for e in events)
                    new_tags[tag_id] = NewTag(row and row["tag_name"], first, observed or first)
        except EventApplyError as error:
            step.outcome.fail(f"tag event: {error}", events)
            continue
        step.outcome.settle("applied", events)
        changes[tag_id] = {i: c for i, c in decided.items() if placement is None or placement.inside(i)}
    _write(step, stored["tags"], new_tags, changes)


_OUTSIDE = "tag event naming only members and departments outside the company's department scope: recorded, not applied"


def _named(event: Event, renames: list[Event]) -> set[Item]:
    """The members and departments an event names (none when a list is malformed: the fold reports it)."""
    try:
        return set(item_changes([event], renames))
    except EventApplyError:
        return set()


def _only_outside(event: Event, renames: list[Event], placement: TagPlacement) -> bool:
    named = _named(event, renames)
    return bool(named) and not any(map(placement.inside, named))


def _placement(step: WriteStep, groups: list[Group], renames: list[Event]) -> TagPlacement:
    """Where the members and departments the tag events (and fetched tag answers) name stand against the scope."""
    userids = {key for g in groups for e in g.events for kind, key in _named(e, renames) if kind == "user"}
    for group in groups:
        if isinstance(got := step.fetched.get(("tag", group.key)), dict):
            userids |= {u["userid"] for u in got.get("userlist") or [] if isinstance(u, dict) and "userid" in u}
    sql = step.sql("users")["select_department_ids"]
    stored = {int(d): bool(out) for d, out in step.conn.execute(text(sql), {"corp_id": step.corp_id})}
    return tag_placement(step.conn, step.corp_id, MemberPlacement(step.scope, stored, step.tree), userids)


@dataclass(frozen=True)
class NewTag:
    """A tag row to write: created, revived, or named by a fetch. ``since`` opens its history version;
    ``observed_at`` is when WeCom was seen with it whole (a fetch), else what was known before."""

    name: str | None
    since: datetime
    observed_at: datetime


def _observed(row: dict[str, Any] | None) -> datetime | None:
    """When a snapshot or fetch last saw the tag whole: events before that are in it. A tag known only from
    events (created from their ids, so without a name) was never seen whole."""
    if row is None or row["tag_name"] is None:
        return None
    return parse_db_time(row["observed_at"])


def unknown_tags(conn: Connection, corp_id: str, groups: list[Group]) -> list[str]:
    """The tags of ``groups`` not stored here (or deleted): what the apply fetches when the secret may."""
    sql = read_named_statements(SQL_FILES["tags"], conn.dialect.name)["select_known_tags"]
    known: set[str] = set()
    for chunk in in_chunks({int(g.key) for g in groups}):
        rows = conn.execute(expanding(sql, "keys"), {"corp_id": corp_id, "keys": chunk})
        known |= {str(tag_id) for (tag_id,) in rows}
    return [g.key for g in groups if g.key not in known]


def _stored(step: WriteStep, tag_ids: list[int]) -> dict[str, Any]:
    """Stored tag rows, current memberships per tag, and when each membership last changed."""
    sql = step.sql("tags")
    tags: dict[int, dict[str, Any]] = {}
    links: dict[int, set[Item]] = defaultdict(set)
    recorded: dict[int, dict[Item, datetime]] = defaultdict(dict)
    for chunk in in_chunks(set(tag_ids)):
        params = {"corp_id": step.corp_id, "keys": chunk}
        for row in step.conn.execute(expanding(sql["select_tags"], "keys"), params).mappings():
            tags[int(row["tag_id"])] = dict(row)
        for kind, statement in (("user", "select_tag_users"), ("party", "select_tag_departments")):
            for tag_id, item in step.conn.execute(expanding(sql[statement], "keys"), params):
                links[int(tag_id)].add((kind, item if kind == "user" else int(item)))
        for kind, statement in (("user", "select_tag_user_changes"), ("party", "select_tag_department_changes")):
            for row in step.conn.execute(expanding(sql[statement], "keys"), params).mappings():
                times = [parse_db_time(t) for t in (row["started"], row["ended"]) if t is not None]
                item = row["item"] if kind == "user" else int(row["item"])
                recorded[int(row["tag_id"])][(kind, item)] = max(times)
    return {"tags": tags, "links": links, "recorded": recorded}


def _write(
    step: WriteStep,
    stored: dict[int, dict[str, Any]],
    new_tags: dict[int, NewTag],
    changes: dict[int, dict[Item, list[ItemChange]]],
) -> None:
    """History first (it reads the versions around each change), then the current rows."""
    tag_rows = _tag_rows(step, new_tags, stored)
    stage: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for tag_id, flips in changes.items():
        for (kind, item), played in flips.items():
            history, column, table = _LINKS[kind]
            row = _link_row(step.corp_id, tag_id, column, item)
            for level, change in enumerate(played):
                if change.joins:
                    step.open(history, row, step.t(change.at), level)
                else:
                    step.close(history, {"tag_id": tag_id, column: item}, step.t(change.at), level)
            stage[table].append(row | {"joins": played[-1].joins})
    step.write_history()
    step.recreate_stages("tags", ("", "users_", "departments_"))
    step.stage("stage_delta_tags", tag_rows)
    for table, rows in stage.items():
        step.stage(table, rows)
    step.run("tags", "upsert_tags", "insert_tag_users", "delete_tag_users")
    step.run("tags", "insert_tag_departments", "delete_tag_departments")


def _tag_rows(step: WriteStep, new_tags: dict[int, NewTag], stored: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """The tag rows to write (created, revived, or renamed by a fetch), each opening a history version."""
    rows = []
    for tag_id, new in new_tags.items():
        raw = pd.DataFrame([{"tagid": tag_id, "tagname": new.name}])
        row = plain_rows(transform_tags(raw, step.corp_id).tags)[0]
        old = stored.get(tag_id)
        if old is not None and not old["is_deleted"] and old["row_hash"] == row["row_hash"]:
            continue
        if old is None:
            step.tags.inserted += 1
        elif old["is_deleted"]:
            step.tags.revived += 1
        else:
            step.tags.updated += 1
        step.open("tag", {k: v for k, v in row.items() if k != "corp_id"}, step.t(new.since))
        rows.append(row | {"observed_at": step.t(new.observed_at)})
    return rows


def _link_row(corp_id: str, tag_id: int, column: str, item: Any) -> dict[str, Any]:
    """A membership row with the row hash a snapshot gives it."""
    listed = {"userlist": [{"userid": item}]} if column == "userid" else {"partylist": [item]}
    tables = transform_tags(pd.DataFrame([{"tagid": tag_id, **listed}]), corp_id)
    frame = tables.tag_users if column == "userid" else tables.tag_departments
    return plain_rows(frame)[0]
