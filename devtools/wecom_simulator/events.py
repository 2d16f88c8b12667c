"""change_contact event XML, as WeCom words it, for a directory ``Change``.

Strings travel in CDATA, numbers bare (``CreateTime``, ``MainDepartment``,
``Gender``, ``Status``, ``Id``, ``Order``, ``Type``), like WeCom's published
samples. The ids-only form is what callback URLs configured after 2022-08-15
receive: member events carry only UserID (+NewUserID on a rename, without
which a rename could not be told) and Department, party events only Id and
ParentId, and update_party fires only when the parent changed. Deletes carry
the id alone in both forms. update_tag (``tags.TagChange``) names the tag and the
members and departments an edit added or removed.
"""

from __future__ import annotations

from typing import Any

from wecom_simulator.model import Change, Department, Member, Org
from wecom_simulator.tags import TagChange

BARE_TAGS = frozenset({"CreateTime", "MainDepartment", "Gender", "Status", "Id", "Order", "Type", "TagId"})

# user/get field -> event tag, in WeCom's sample order; fields without a tag never appear in events.
USER_TAGS: dict[str, str] = {
    "name": "Name",
    "department": "Department",
    "main_department": "MainDepartment",
    "is_leader_in_dept": "IsLeaderInDept",
    "direct_leader": "DirectLeader",
    "position": "Position",
    "mobile": "Mobile",
    "gender": "Gender",
    "email": "Email",
    "biz_mail": "BizMail",
    "status": "Status",
    "avatar": "Avatar",
    "alias": "Alias",
    "telephone": "Telephone",
    "address": "Address",
    "extattr": "ExtAttr",
}
PARTY_TAGS = {"name": "Name", "parentid": "ParentId"}


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(tag: str, value: Any) -> str:
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    text = str(value) if tag in BARE_TAGS else _cdata(str(value))
    return f"<{tag}>{text}</{tag}>"


def _extattr(extattr: dict[str, Any]) -> str:
    items = []
    for attr in extattr.get("attrs", []):
        kind = attr.get("type", 0)
        if kind == 0:
            body = f"<Text>{_element('Value', attr.get('text', {}).get('value', ''))}</Text>"
        elif kind == 1:
            web = attr.get("web", {})
            body = f"<Web>{_element('Title', web.get('title', ''))}{_element('Url', web.get('url', ''))}</Web>"
        else:
            continue
        items.append(f"<Item>{_element('Name', attr.get('name', ''))}{_element('Type', kind)}{body}</Item>")
    return "<ExtAttr>" + "".join(items) + "</ExtAttr>"


def _user_fields(org: Org, member: Member, fields: tuple[str, ...]) -> list[str]:
    view = org.user_view(member)
    rendered = []
    for field_name, tag in USER_TAGS.items():
        if field_name in fields:
            value = view[field_name]
            rendered.append(_extattr(value) if tag == "ExtAttr" else _element(tag, value))
    return rendered


def _member_body(change: Change, org: Org, member: Member, ids_only: bool) -> list[str]:
    userid = change.old_userid or member.userid
    body = [_element("UserID", userid)]
    if change.old_userid:
        body.append(_element("NewUserID", member.userid))
    if change.kind == "delete_user":
        return body
    if ids_only:
        return [*body, _element("Department", list(member.department))]
    return body + _user_fields(org, member, tuple(USER_TAGS) if change.kind == "create_user" else change.fields)


def _party_body(change: Change, dept: Department, ids_only: bool) -> list[str] | None:
    body = [_element("Id", dept.id)]
    if change.kind == "delete_party":
        return body
    if ids_only:
        if change.kind == "update_party" and "parentid" not in change.fields:
            return None
        return [*body, _element("ParentId", dept.parentid)]
    if change.kind == "create_party":
        return [*body, _element("Name", dept.name), _element("ParentId", dept.parentid), _element("Order", dept.order)]
    return body + [_element(PARTY_TAGS[f], getattr(dept, f)) for f in change.fields if f in PARTY_TAGS]


def _tag_body(change: TagChange) -> list[str]:
    """update_tag: the tag id and the four comma-separated lists, empty ones included, as in WeCom's sample."""
    items = {
        "AddUserItems": change.add_users,
        "DelUserItems": change.del_users,
        "AddPartyItems": change.add_parties,
        "DelPartyItems": change.del_parties,
    }
    return [_element("TagId", change.tag.id)] + [_element(name, list(values)) for name, values in items.items()]


def render_event(change: Change | TagChange, org: Org, corp_id: str, *, ids_only: bool, create_time: int) -> str | None:
    """The decrypted event XML for ``change``, or None when WeCom would send nothing for it.

    update_tag carries ids only in both forms: the ids-only form does not change it."""
    if isinstance(change, TagChange):
        body: list[str] | None = _tag_body(change)
    elif isinstance(entity := change.entity, Member):
        body = _member_body(change, org, entity, ids_only)
    else:
        body = _party_body(change, entity, ids_only)
    if body is None:
        return None
    header = [
        _element("ToUserName", corp_id),
        _element("FromUserName", "sys"),
        _element("CreateTime", create_time),
        _element("MsgType", "event"),
        _element("Event", "change_contact"),
        _element("ChangeType", change.kind),
    ]
    return "<xml>" + "".join(header + body) + "</xml>"


def envelope(corp_id: str, encrypted: str) -> str:
    """The POST body around an encrypted event; AgentID is empty for contact-sync callbacks."""
    return f"<xml>{_element('ToUserName', corp_id)}<AgentID></AgentID>{_element('Encrypt', encrypted)}</xml>"
