"""JSON shapes of departments and members exactly as the WeCom endpoints return them.

One place builds each shape so the list endpoints, user/get and export files can
never drift apart. ``sensitive=False`` drops the fields that apps created after
2022-06-20 no longer receive: they are absent, not empty, as on WeCom (for tag/get,
the members' ``name``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from wecom_simulator.model import Department, Member, Org, Tag
from wecom_simulator.profiles import SENSITIVE_FIELDS

USER_FIELD_ORDER = (
    "userid", "name", "department", "order", "position", "mobile", "gender", "email", "biz_mail",
    "is_leader_in_dept", "direct_leader", "avatar", "thumb_avatar", "telephone", "alias", "address",
    "open_userid", "main_department", "extattr", "status", "qr_code", "external_position", "external_profile",
)  # fmt: skip


def department_full(dept: Department) -> dict[str, Any]:
    return {
        "id": dept.id,
        "name": dept.name,
        "name_en": dept.name_en,
        "department_leader": [m.userid for m in dept.leaders],
        "parentid": dept.parentid,
        "order": dept.order,
    }


def department_simple(dept: Department) -> dict[str, Any]:
    return {"id": dept.id, "parentid": dept.parentid, "order": dept.order}


def user_simple(org: Org, member: Member, visible: frozenset[int] | None = None) -> dict[str, Any]:
    profile = org.profile(member)
    return {
        "userid": member.userid,
        "name": profile["name"],
        "department": [d for d in member.department if visible is None or d in visible],
        "open_userid": profile["open_userid"],
    }


def user_full(
    org: Org, member: Member, *, sensitive: bool = True, visible: frozenset[int] | None = None
) -> dict[str, Any]:
    """``visible``: an app's visible range; WeCom then lists only the visible departments (with their
    aligned order and leader flags) and leaves out a main department the app cannot see."""
    view = org.user_view(member)
    if visible is not None:
        keep = [i for i, d in enumerate(view["department"]) if d in visible]
        for key in ("department", "order", "is_leader_in_dept"):
            view[key] = [view[key][i] for i in keep]
        if view["main_department"] not in visible:
            del view["main_department"]
    return {key: view[key] for key in USER_FIELD_ORDER if key in view and (sensitive or key not in SENSITIVE_FIELDS)}


def tag_brief(tag: Tag) -> dict[str, Any]:
    """A tag/list entry."""
    return {"tagid": tag.id, "tagname": tag.name}


def visible_tag_items(org: Org, tag: Tag, hidden: Collection[int]) -> tuple[list[Member], list[int]]:
    """The tag's members and departments the caller may see: not those wholly in ``hidden`` departments."""
    members = [m for m in tag.users if org.is_current(m) and not all(d in hidden for d in m.department)]
    return members, [d for d in tag.parties if d not in hidden]


def tag_detail(org: Org, tag: Tag, *, sensitive: bool = True, hidden: Collection[int] = ()) -> dict[str, Any]:
    """tag/get's answer: the tag name, its members (``name`` withheld from apps created after 2022-06-20)
    and its departments."""
    members, parties = visible_tag_items(org, tag, hidden)
    userlist = [
        {"userid": m.userid, "name": org.profile(m)["name"]} if sensitive else {"userid": m.userid} for m in members
    ]
    return {"tagname": tag.name, "userlist": userlist, "partylist": parties}


def tag_export_entries(org: Org, tag: Tag, hidden: Collection[int] = ()) -> list[dict[str, Any]]:
    """export/taguser's entries: one per member (``type`` 1) and one per department (``type`` 2)."""
    members, parties = visible_tag_items(org, tag, hidden)
    return [{"userid": m.userid, "type": 1} for m in members] + [{"department": d, "type": 2} for d in parties]
