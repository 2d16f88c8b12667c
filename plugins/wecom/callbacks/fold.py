"""Fold one entity's callback events into its net change: pure Python, no SQL, no I/O.

An event is a hint about an entity at its CreateTime. Events of one member (under
its latest userid) or one department are folded in order into the state WeCom
held after each of them, in the user/get or department/get shape the full
sync's transform reads. Two rules hold throughout:

- Absent is not empty: a tag the event does not carry changes nothing, and a
  fetched answer is merged field by field over what is known (an app secret
  gets no mobile, email, ...: those keep their stored values).
- A fetched answer is WeCom's present state, newer than every event folded
  with it; ``Gone`` (60111/60123/60003) means the entity no longer exists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wecom.errors import EventApplyError
from wecom.runs import READY_STATUSES

# change_contact tag -> user/get field; lists are comma-separated in events.
USER_EVENT_FIELDS: dict[str, str] = {
    "Name": "name",
    "Department": "department",
    "MainDepartment": "main_department",
    "IsLeaderInDept": "is_leader_in_dept",
    "DirectLeader": "direct_leader",
    "Position": "position",
    "Mobile": "mobile",
    "Gender": "gender",
    "Email": "email",
    "BizMail": "biz_mail",
    "Status": "status",
    "Avatar": "avatar",
    "Alias": "alias",
    "Telephone": "telephone",
    "Address": "address",
    "ExtAttr": "extattr",
}
PARTY_EVENT_FIELDS: dict[str, str] = {"Name": "name", "ParentId": "parentid", "Order": "order"}
# What an ids-only member event carries; a member event with nothing else is completed by a fetch.
_ID_TAGS = frozenset({"UserID", "NewUserID", "Department"})
# Lists aligned by position with ``department`` in user/get answers.
_ALIGNED = ("order", "is_leader_in_dept")
_CHANGE_RANK = {"create": 0, "update": 1, "delete": 2}

Version = tuple[datetime, dict[str, Any] | None]


@dataclass(frozen=True)
class Event:
    """One stored callback, as the fold needs it."""

    event_id: int
    status: str
    attempts: int
    create_time: datetime
    change_type: str
    entity_type: str
    entity_id: str
    new_entity_id: str | None
    payload: dict[str, Any]

    @property
    def order_key(self) -> tuple[datetime, int, int]:
        """CreateTime, then within its second creation before change before deletion (WeCom retries and
        reorders deliveries, so arrival alone cannot order one second's events), then arrival."""
        return self.create_time, _CHANGE_RANK.get(self.change_type.split("_")[0], 1), self.event_id

    @property
    def ready(self) -> bool:
        return self.status in READY_STATUSES

    @property
    def renames(self) -> bool:
        return bool(self.new_entity_id) and self.new_entity_id != self.entity_id

    def needs_fetch(self) -> bool:
        """Whether the event lacks the entity's fields (ids-only form), so WeCom is asked when it lets us."""
        if self.change_type in ("create_user", "update_user"):
            carries_fields = bool(set(self.payload) & (set(USER_EVENT_FIELDS) - _ID_TAGS))
            # A full-form pure rename carries only the two userids; the ids-only form adds Department.
            pure_rename = "NewUserID" in self.payload and "Department" not in self.payload
            return not carries_fields and not pure_rename
        return self.change_type == "create_party" and "Name" not in self.payload


@dataclass(frozen=True)
class Gone:
    """A fetch answered that the entity no longer exists."""


@dataclass(frozen=True)
class FetchFailed:
    """A fetch failed for a reason worth retrying; the message is safe to store."""

    message: str


# A fetch's outcome; an entity missing from the fetched mapping was not asked, or the secret may not ask.
Fetched = dict[str, Any] | Gone | FetchFailed


@dataclass
class Group:
    """The events of one entity (a member under its latest userid, or a department), in order."""

    key: str
    events: list[Event]

    @property
    def stamp(self) -> datetime:
        return max(e.create_time for e in self.events)

    @property
    def ready(self) -> list[Event]:
        return [e for e in self.events if e.ready]

    @property
    def replaying(self) -> bool:
        """Some of its events were applied before: the late ones are replayed together with them."""
        return any(not e.ready for e in self.events)


# --- grouping ------------------------------------------------------------------------------------


def group_users(events: Iterable[Event], renames: Iterable[Event]) -> list[Group]:
    """Member events grouped under the userid each member has after the last known rename.

    ``renames`` are the update_user events with NewUserID, applied or not; an event of ``a`` is
    grouped under ``c`` when ``a -> b`` and then ``b -> c`` follow it, whatever order they arrived in.
    """
    by_old: dict[str, list[Event]] = defaultdict(list)
    for rename in sorted({e.event_id: e for e in renames if e.renames}.values(), key=lambda e: e.order_key):
        by_old[rename.entity_id].append(rename)

    def latest_userid(event: Event) -> str:
        userid, after, seen = event.entity_id, event.order_key, set()
        while userid not in seen:
            seen.add(userid)
            later = [r for r in by_old.get(userid, ()) if r.order_key >= after]
            if not later:
                return userid
            userid, after = later[0].new_entity_id or userid, later[0].order_key
        return userid

    groups: dict[str, list[Event]] = defaultdict(list)
    for event in sorted({e.event_id: e for e in events}.values(), key=lambda e: e.order_key):
        groups[latest_userid(event)].append(event)
    return [Group(key, evs) for key, evs in groups.items() if any(e.ready for e in evs)]


def group_departments(events: Iterable[Event]) -> list[Group]:
    groups: dict[str, list[Event]] = defaultdict(list)
    for event in sorted({e.event_id: e for e in events}.values(), key=lambda e: e.order_key):
        groups[event.entity_id].append(event)
    return [Group(key, evs) for key, evs in groups.items() if any(e.ready for e in evs)]


# --- members -------------------------------------------------------------------------------------


def _split(value: Any) -> list[str]:
    if not isinstance(value, str):
        raise EventApplyError("a list field is not text")
    return [part.strip() for part in value.split(",") if part.strip()]


def int_list(value: Any, what: str) -> list[int]:
    """A comma-separated list of ids as events carry it (``"1,2,3"``)."""
    try:
        return [int(part) for part in _split(value)]
    except ValueError:
        raise EventApplyError(f"{what} holds a non-numeric entry") from None


def _extattr(value: Any) -> dict[str, Any]:
    """ExtAttr as events carry it (``Item`` list) -> user/get's ``{"attrs": [...]}``.

    Events document text (0) and web (1) items; an item of another type (a mini program) says
    nothing this can read, so it is left out and its stored value kept (absent is not empty)."""
    items = value.get("Item", []) if isinstance(value, dict) else []
    attrs = []
    for item in items:
        kind = int(item.get("Type") or 0)
        attr: dict[str, Any] = {"type": kind, "name": item.get("Name", "")}
        if kind == 1:
            web = item.get("Web") or {}
            attr["web"] = {"url": web.get("Url", ""), "title": web.get("Title", "")}
        elif kind == 0:
            attr["text"] = {"value": (item.get("Text") or {}).get("Value", "")}
        else:
            continue
        attrs.append(attr)
    return {"attrs": attrs}


def _realign(state: dict[str, Any], departments: list[int]) -> None:
    """A new department list keeps each department's order and leader flag; new ones have none."""
    old = state.get("department") or []
    for aligned in _ALIGNED:
        values = dict(zip(old, state.get(aligned) or [None] * len(old), strict=False))
        state[aligned] = [values.get(d) for d in departments]
    state["department"] = departments


def _apply_user_fields(state: dict[str, Any], payload: Mapping[str, Any]) -> bool:
    """Set the member fields an event carries; True when it said which departments the member leads."""
    said_leaders = False
    if "Department" in payload:
        _realign(state, int_list(payload["Department"], "Department"))
        said_leaders = True
    for tag, name in USER_EVENT_FIELDS.items():
        if tag not in payload or tag == "Department":
            continue
        value = payload[tag]
        if tag == "IsLeaderInDept":
            flags = int_list(value, tag)
            if len(flags) != len(state.get("department") or []):
                raise EventApplyError("IsLeaderInDept does not align with the member's departments")
            state[name] = flags
            said_leaders = True
        elif tag == "DirectLeader":
            state[name] = _split(value)
        elif tag == "ExtAttr":
            state[name] = _extattr(value)
        else:
            state[name] = value
    return said_leaders


def merge_present(known: Mapping[str, Any] | None, answer: Mapping[str, Any]) -> dict[str, Any]:
    """``answer``'s fields over ``known``: a field the answer lacks keeps its known value (absent is
    not empty); a new department list without its aligned lists keeps each department's known ones."""
    merged = dict(known or {})
    if "department" in answer:
        _realign(merged, [int(d) for d in answer["department"]])
    return merged | dict(answer)


def fold_user(
    key: str, base: dict[str, Any] | None, deleted: bool, events: Sequence[Event], fetched: Fetched | None
) -> tuple[list[Version], bool]:
    """The member's versions after each event time (user/get-shaped, None while deleted), and whether
    its led departments are known.

    ``base`` is the stored state (kept when deleted, so that a late event replayed before a delete
    finds the content it changed). A create starts from nothing unless the member is known alive (a
    create of a member we hold only confirms it). A fetched answer is merged over the last state,
    at the time of the last event."""
    if isinstance(fetched, Gone):
        return [(events[-1].create_time, None)], True
    state, alive, said_leaders = base, base is not None and not deleted, False
    versions: list[Version] = []
    for event in events:
        if event.change_type == "delete_user":
            alive, said_leaders = False, True
        else:
            fresh = state is None or (event.change_type == "create_user" and not alive)
            state = {} if fresh else dict(state)
            said_leaders |= _apply_user_fields(state, event.payload)
            state["userid"] = key
            alive = True
        if versions and versions[-1][0] == event.create_time:
            versions.pop()
        versions.append((event.create_time, state if alive else None))
    if isinstance(fetched, dict):
        versions[-1] = (versions[-1][0], merge_present(state, fetched) | {"userid": key})
        said_leaders |= "is_leader_in_dept" in fetched
    return versions, said_leaders


def named_departments(events: Iterable[Event]) -> set[int]:
    """The departments that member events place members in (their ``Department`` tags)."""
    named: set[int] = set()
    for event in events:
        if "Department" in event.payload:
            named |= set(int_list(event.payload["Department"], "Department"))
    return named


# --- departments ---------------------------------------------------------------------------------


def fold_department(
    base: dict[str, Any] | None, deleted: bool, events: Iterable[Event], fetched: Fetched | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the department/get-shaped state after the events or None when deleted, its last known content)."""
    state, alive = base, base is not None and not deleted
    for event in events:
        if event.change_type == "delete_party":
            alive = False
            continue
        fresh = state is None or (event.change_type == "create_party" and not alive)
        state = {} if fresh else dict(state)
        state |= {name: event.payload[tag] for tag, name in PARTY_EVENT_FIELDS.items() if tag in event.payload}
        alive = True
    if isinstance(fetched, Gone):
        alive = False
    elif isinstance(fetched, dict):
        state, alive = merge_present(state, fetched), True
    if state is None:
        return None, None
    try:
        state = state | {"parentid": int(state["parentid"])}
        state["order"] = None if state.get("order") in (None, "") else int(state["order"])
    except (KeyError, TypeError, ValueError):
        raise EventApplyError("department has no usable ParentId/Order (not yet known here)") from None
    return (state if alive else None), state
