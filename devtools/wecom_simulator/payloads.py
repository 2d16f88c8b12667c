"""JSON shapes of departments and members exactly as the WeCom endpoints return them.

One place builds each shape so the list endpoints, user/get and export files can
never drift apart. ``sensitive=False`` drops the fields that apps created after
2022-06-20 no longer receive: they are absent, not empty, as on WeCom.
"""

from __future__ import annotations

from typing import Any

from wecom_simulator.model import Department, Member, Org
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


def user_simple(org: Org, member: Member) -> dict[str, Any]:
    profile = org.profile(member)
    return {
        "userid": member.userid,
        "name": profile["name"],
        "department": list(member.department),
        "open_userid": profile["open_userid"],
    }


def user_full(org: Org, member: Member, *, sensitive: bool = True) -> dict[str, Any]:
    view = org.user_view(member)
    return {key: view[key] for key in USER_FIELD_ORDER if sensitive or key not in SENSITIVE_FIELDS}
