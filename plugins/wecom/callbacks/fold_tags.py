"""Fold one tag's ``update_tag`` events into the members and departments that join or leave it: pure Python.

An update_tag event names what an edit added and removed (``AddUserItems``, ``DelUserItems``,
``AddPartyItems``, ``DelPartyItems``), so a tag's state is folded item by item rather than replayed
whole: each member or department plays the changes of the events that name it, in event order,
from its stored state, over those later than its last recorded change (a snapshot that saw it,
or an earlier apply). Applied events are read again with a late one, so events may arrive in any
order: the membership and its history come out the same. A fetched tag/get
answer is WeCom's present state and replaces the tag's membership, except a list it lacks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wecom.callbacks.fold import Event, Group, int_list

# (kind, id): ("user", userid) or ("party", department id)
Item = tuple[str, Any]
ITEM_LISTS: dict[str, tuple[str, bool]] = {
    "AddUserItems": ("user", True),
    "DelUserItems": ("user", False),
    "AddPartyItems": ("party", True),
    "DelPartyItems": ("party", False),
}
# tag/get answer list -> item kind
ANSWER_LISTS = {"userlist": "user", "partylist": "party"}


@dataclass(frozen=True)
class ItemChange:
    """One member or department joining (``joins``) or leaving a tag at ``at``."""

    item: Item
    joins: bool
    at: datetime


def group_tags(events: Iterable[Event]) -> list[Group]:
    """Tag events grouped per tag in event order; only groups with an event still to decide."""
    groups: dict[str, list[Event]] = defaultdict(list)
    for event in sorted({e.event_id: e for e in events}.values(), key=lambda e: e.order_key):
        groups[event.entity_id].append(event)
    return [Group(key, evs) for key, evs in groups.items() if any(e.ready for e in evs)]


def _items(event: Event) -> Iterable[tuple[Item, bool]]:
    for tag, (kind, joins) in ITEM_LISTS.items():
        if tag not in event.payload:
            continue
        if kind == "party":
            yield from ((("party", d), joins) for d in int_list(event.payload[tag], tag))
        else:
            yield from ((("user", u), joins) for u in event.payload[tag].split(",") if u.strip())


def item_changes(events: Iterable[Event], renames: Iterable[Event] = ()) -> dict[Item, list[ItemChange]]:
    """Every change ``events`` make, per member or department, in event order. A member is named by the
    userid it has after the ``renames`` (update_user with NewUserID) that follow the event."""
    chain = sorted((r for r in renames if r.renames), key=lambda r: r.order_key)
    changes: dict[Item, list[ItemChange]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e.order_key):
        for (kind, key), joins in _items(event):
            item = (kind, _renamed(key, event, chain) if kind == "user" else key)
            changes[item].append(ItemChange(item, joins, event.create_time))
    return changes


def _renamed(userid: str, event: Event, chain: list[Event]) -> str:
    """The userid ``userid`` had after the renames from the event's second on. A rename in the very second
    of the event counts whatever order they arrived in: an event names a member by the userid it has then,
    so one naming the old userid came before the rename."""
    at = event.create_time
    for rename in chain:
        if rename.create_time >= at and rename.entity_id == userid:
            userid, at = rename.new_entity_id or userid, rename.create_time
    return userid


def transitions(
    changes: Mapping[Item, list[ItemChange]], current: set[Item], recorded: Mapping[Item, datetime]
) -> dict[Item, list[ItemChange]]:
    """Per item, the changes that flip it, played from the stored state over those later than its last
    recorded change (earlier ones are in what is stored); the last one is where the item ends."""
    flips: dict[Item, list[ItemChange]] = {}
    for item, sequence in changes.items():
        since = recorded.get(item)
        held, played = item in current, []
        for change in sequence:
            if (since is None or change.at > since) and change.joins != held:
                played.append(change)
                held = change.joins
        if played:
            flips[item] = played
    return flips


def answer_changes(answer: Mapping[str, Any], current: set[Item], at: datetime) -> dict[Item, list[ItemChange]]:
    """What makes the stored membership equal a tag/get answer (a list the answer lacks is kept)."""
    changes: dict[Item, list[ItemChange]] = {}
    for field, kind in ANSWER_LISTS.items():
        if field not in answer:
            continue
        listed = {(kind, e["userid"] if kind == "user" else int(e)) for e in answer[field]}
        stale = {item for item in current if item[0] == kind} - listed
        changes |= {item: [ItemChange(item, item in listed, at)] for item in (listed - current) | stale}
    return changes
