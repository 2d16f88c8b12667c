"""What a member owns beside its row and memberships, as callbacks change it: its custom fields
(``wecom_user_attributes``) and, when it is deleted, its tag memberships; with their history.

Each folded member version in the user/get shape carries ``extattr`` when an event's ``ExtAttr``, a
fetch or the stored member said it; its fields become rows through the full sync's transform, so
hashes match a snapshot's. As there, per field: one a version names is written (an empty value
clears it), one it leaves out keeps its stored row. A deleted member's fields and tag memberships
end (WeCom drops a deleted member from its tags without an update_tag event), and so do those of a
member leaving the department scope (their history versions end ``out_of_scope``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from wecom.callbacks.fold import Version
from wecom.callbacks.queue import expanding, in_chunks
from wecom.callbacks.writer import WriteStep, plain_rows
from wecom.directory.attributes import transform_attributes

# attr_name -> attribute row (without corp_id)
Fields = dict[str, dict[str, Any]]


def stored_attributes(step: WriteStep, userids: Iterable[str]) -> dict[str, Fields]:
    """The stored custom fields of ``userids``."""
    sql = step.sql("users")["select_attributes"]
    found: dict[str, Fields] = defaultdict(dict)
    for chunk in in_chunks(set(userids)):
        for row in step.conn.execute(expanding(sql, "keys"), {"corp_id": step.corp_id, "keys": chunk}).mappings():
            found[row["userid"]][row["attr_name"]] = dict(row)
    return found


def end_tag_memberships(
    step: WriteStep, versions: Mapping[str, list[Version]], exits: Mapping[str, Collection[datetime]]
) -> None:
    """Close the tag membership history of every member whose last version is its deletion or its leaving
    the scope (a version time in ``exits``); the rows themselves go with ``delete_tag_memberships_of_deleted``."""
    deleted = [key for key, member_versions in versions.items() if member_versions[-1][1] is None]
    sql = step.sql("users")["select_tag_memberships"]
    for chunk in in_chunks(set(deleted)):
        for tag_id, userid in step.conn.execute(expanding(sql, "keys"), {"corp_id": step.corp_id, "keys": chunk}):
            stamp = versions[userid][-1][0]
            key = {"tag_id": int(tag_id), "userid": userid}
            level = len(versions[userid]) - 1
            step.close("tag_user", key, step.t(stamp), level, ended_by=_ended_by(stamp, exits.get(userid, ())))


def _ended_by(stamp: datetime, exits: Collection[datetime]) -> str:
    return "out_of_scope" if stamp in exits else "deleted"


def attribute_versions(
    step: WriteStep,
    versions: Mapping[str, list[Version]],
    stored: Mapping[str, Fields],
    exits: Mapping[str, Collection[datetime]],
) -> list[dict[str, Any]]:
    """Record the history of each member's fields over its versions (``exits``: the version times at which
    a member left the scope); returns the rows its last version names (to upsert when the member's own row
    takes the write)."""
    named: dict[tuple[str, int], Fields] = defaultdict(dict)
    for level in range(max((len(v) for v in versions.values()), default=0)):
        states = [v[level][1] for v in versions.values() if level < len(v) and v[level][1] is not None]
        states = [state for state in states if "extattr" in state]
        if states:
            for row in plain_rows(transform_attributes(pd.DataFrame(states), step.corp_id)):
                named[row["userid"], level][row["attr_name"]] = {k: v for k, v in row.items() if k != "corp_id"}
    final: list[dict[str, Any]] = []
    for key, member_versions in versions.items():
        previous = dict(stored.get(key, {}))
        for level, (stamp, state) in enumerate(member_versions):
            t = step.t(stamp)
            if state is None:
                ended_by = _ended_by(stamp, exits.get(key, ()))
                for name in previous:
                    step.close("attribute", {"userid": key, "attr_name": name}, t, level, ended_by=ended_by)
                previous = {}
                continue
            for name, row in named[key, level].items():
                if previous.get(name, {}).get("row_hash") != row["row_hash"]:
                    step.open("attribute", row, t, level)
                previous[name] = row
        if member_versions[-1][1] is not None:
            final += [row | {"corp_id": step.corp_id} for row in named[key, len(member_versions) - 1].values()]
    return final
