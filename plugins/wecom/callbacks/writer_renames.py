"""Userid changes (update_user with NewUserID): checked, then moved in the apply's transaction.

A member's events are grouped under its latest userid (``fold.group_users``), so a rename is a
move of everything the member's earlier userids hold (row, memberships, leader references,
tag memberships, custom fields, history) to the group's key. The move never deletes a member:
the old userid stays as a deleted tombstone observed at the rename, and every statement is a no-op
when run again, so a retried or duplicated rename, or a chain a -> b -> c applied in any order,
ends with one live member.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wecom.callbacks.fold import Event, Group
from wecom.callbacks.writer import WriteStep
from wecom.store.sql import parse_db_time

NEW_USERID_TAKEN = "NewUserID already belongs to another live member: not applied"
_MOVES = (
    "copy_user",
    "drop_replaced_memberships",
    "drop_replaced_direct_leaders",
    "drop_replaced_led_departments",
    "drop_replaced_tag_memberships",
    "drop_replaced_attributes",
    "move_memberships",
    "move_direct_leaders",
    "move_led_departments",
    "drop_old_memberships",
    "drop_old_direct_leaders",
    "drop_old_led_departments",
    "move_leader_references",
    "drop_old_direct_leader_references",
    "move_history",
    "move_membership_history",
    "move_tag_memberships",
    "drop_old_tag_memberships",
    "move_attributes",
    "drop_old_attributes",
    "move_tag_membership_history",
    "move_attribute_history",
    "tombstone_user",
)


def sources(groups: list[Group]) -> set[str]:
    """Every earlier userid the groups' members had."""
    return {e.entity_id for g in groups for e in g.events if e.renames}


def _live(row: Mapping[str, Any] | None) -> bool:
    return row is not None and not row["is_deleted"]


def taken_new_userid(group: Group, stored: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a ready rename of the group targets a userid another live member holds.

    Not a clash: the target got its row from this member's own chain (an applied rename into it),
    or was deleted earlier in the same events, or the renamed member is not known here at all (a
    duplicate of a rename already applied)."""
    for event in group.ready:
        if not event.renames:
            continue
        new = event.new_entity_id or ""
        earlier = [e for e in group.events if e.order_key < event.order_key]
        explained = any(not e.ready and e.new_entity_id == new for e in group.events if e.renames) or _deleted_before(
            group, new, event
        )
        known = _live(stored.get(event.entity_id)) or any(e.entity_id == event.entity_id for e in earlier)
        if _live(stored.get(new)) and known and not explained:
            return True
    return False


def move_renamed(step: WriteStep, group: Group, stored: Mapping[str, Mapping[str, Any]]) -> None:
    """Move each earlier userid of the member to the group's key, oldest rename first.

    An old userid whose row was observed after its rename is another member by now (reused), and
    is left alone. A member under the key that the same events delete before the rename gives
    its row way (its past stays in the history)."""
    renames: list[Event] = [e for e in group.events if e.renames and e.entity_id != group.key]
    for event in renames:
        row = stored.get(event.entity_id)
        if row is not None and parse_db_time(row["observed_at"]) > event.create_time:
            continue
        replace = _deleted_before(group, group.key, event)
        step.run(
            "rename",
            *_MOVES,
            old=event.entity_id,
            new=group.key,
            renamed_at=step.t(event.create_time),
            replace=replace,
        )


def _deleted_before(group: Group, userid: str, event: Event) -> bool:
    return any(
        e.change_type == "delete_user" and e.entity_id == userid and e.order_key < event.order_key for e in group.events
    )
