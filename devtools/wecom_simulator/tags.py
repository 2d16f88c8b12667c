"""Tags (标签): WeCom's groups of members and whole departments, and the edits an admin makes to them.

WeCom announces only membership changes, as one ``update_tag`` change_contact event per edit
(``AddUserItems``, ``DelUserItems``, ``AddPartyItems``, ``DelPartyItems``); creating, renaming or
deleting a tag is not called back, and neither is a member or department leaving its tags by
being deleted (full syncs find those). The limits are WeCom's: names of 1-32 characters unique in
the company, tag ids non-negative, at most 3,000 tags and 30,000 members and departments per tag.
Not thread-safe by itself: ``SimulatorState`` serialises access with its lock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from wecom_simulator.model import DirectoryError, EntityConflict, EntityNotFound, Member, Org, Tag

MAX_TAGS = 3000
MAX_TAG_NAME = 32
MAX_TAG_ITEMS = 30_000
TAG_NAMES = (
    "技术委员会", "安全员", "新员工", "项目经理", "消防安全员", "工会委员", "内推大使", "审批专员",
    "OKR管理员", "导师", "值班经理", "培训讲师", "IT联络人", "采购审批人", "合规联络人", "办公室管理员",
)  # fmt: skip
MAX_GENERATED_TAGS = 12
MAX_GENERATED_TAG_USERS = 400


@dataclass(frozen=True)
class TagChange:
    """One ``update_tag`` event: what an edit added to and removed from a tag's members."""

    tag: Tag
    add_users: tuple[str, ...] = ()
    del_users: tuple[str, ...] = ()
    add_parties: tuple[int, ...] = ()
    del_parties: tuple[int, ...] = ()
    kind: str = "update_tag"


def generated_tag_count(departments: int) -> int:
    """How many tags ``generate_org`` gives a company of ``departments`` departments by default."""
    return min(MAX_GENERATED_TAGS, 1 + departments // 8)


def generate_tags(org: Org, count: int) -> None:
    """``count`` tags with members and departments drawn from their own random stream, so the rest of
    the generated company is the same whatever the count."""
    rng = random.Random(f"tags:{org.seed}")
    members = org.member_list()
    departments = sorted(org.departments)
    for tag_id in range(1, count + 1):
        name = TAG_NAMES[(tag_id - 1) % len(TAG_NAMES)]
        tag = Tag(tag_id, name if tag_id <= len(TAG_NAMES) else f"{name}{tag_id}")
        if members:
            wanted = rng.randint(1, max(1, min(MAX_GENERATED_TAG_USERS, len(members) // 10)))
            tag.users = rng.sample(members, min(wanted, len(members)))
        if rng.random() < 0.6:
            pool = departments[1:] or departments
            tag.parties = sorted(rng.sample(pool, min(rng.randint(1, 2), len(pool))))
        org.tags[tag_id] = tag
    org.version += 1


def tag_of(org: Org, tag_id: Any) -> Tag:
    tag = org.tags.get(tag_id) if isinstance(tag_id, int) and not isinstance(tag_id, bool) else None
    if tag is None:
        raise EntityNotFound(f"tag {tag_id!r} not found")
    return tag


def _check_name(org: Org, name: Any, exclude: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_TAG_NAME:
        raise DirectoryError(f"tagname must be 1-{MAX_TAG_NAME} characters, got {name!r}")
    if any(tag.name == name and tag.id != exclude for tag in org.tags.values()):
        raise EntityConflict(f"a tag named {name!r} already exists")
    return name


def add_tag(org: Org, fields: dict[str, Any]) -> Tag:
    """tag/create: ``{"tagname", "tagid"?}``; no event is sent."""
    unknown = set(fields) - {"tagname", "tagid"}
    if unknown:
        raise DirectoryError(f"unknown tag fields: {sorted(unknown)}")
    if len(org.tags) >= MAX_TAGS:
        raise DirectoryError(f"a company has at most {MAX_TAGS} tags")
    tag_id = fields.get("tagid", max(org.tags, default=0) + 1)
    if not isinstance(tag_id, int) or isinstance(tag_id, bool) or tag_id < 0:
        raise DirectoryError(f"tagid must be a non-negative integer, got {tag_id!r}")
    if tag_id in org.tags:
        raise EntityConflict(f"tag {tag_id} already exists")
    tag = Tag(tag_id, _check_name(org, fields.get("tagname")))
    org.tags[tag_id] = tag
    org.version += 1
    return tag


def rename_tag(org: Org, tag_id: int, fields: dict[str, Any]) -> Tag:
    """tag/update: ``{"tagname"}``; WeCom sends no event for it."""
    if set(fields) != {"tagname"}:
        raise DirectoryError("a tag update takes exactly {'tagname'}")
    tag = tag_of(org, tag_id)
    tag.name = _check_name(org, fields["tagname"], exclude=tag.id)
    org.version += 1
    return tag


def delete_tag(org: Org, tag_id: int) -> Tag:
    """tag/delete; no event is sent."""
    tag = tag_of(org, tag_id)
    del org.tags[tag.id]
    org.version += 1
    return tag


def _members(org: Org, userids: Any) -> list[Member]:
    if not isinstance(userids, list):
        raise DirectoryError("userlist must be a list of userids")
    found = []
    for userid in userids:
        member = org.user(userid) if isinstance(userid, str) else None
        if member is None:
            raise EntityNotFound(f"userid {userid!r} not found")
        found.append(member)
    return found


def _parties(org: Org, ids: Any) -> list[int]:
    if not isinstance(ids, list):
        raise DirectoryError("partylist must be a list of department ids")
    for dept_id in ids:
        if dept_id not in org.departments or isinstance(dept_id, bool):
            raise EntityNotFound(f"department {dept_id!r} not found")
    return list(ids)


def _body(fields: dict[str, Any]) -> tuple[Any, Any]:
    unknown = set(fields) - {"userlist", "partylist"}
    if unknown:
        raise DirectoryError(f"unknown fields: {sorted(unknown)}")
    if not fields.get("userlist") and not fields.get("partylist"):
        raise DirectoryError("userlist and partylist cannot both be empty")
    return fields.get("userlist", []), fields.get("partylist", [])


def add_tag_members(org: Org, tag_id: int, fields: dict[str, Any]) -> list[TagChange]:
    """tag/addtagusers: ``{"userlist"?, "partylist"?}``; one update_tag event naming what was new."""
    tag = tag_of(org, tag_id)
    userids, party_ids = _body(fields)
    members = [m for m in dict.fromkeys(_members(org, userids)) if m not in tag.users]
    parties = [d for d in dict.fromkeys(_parties(org, party_ids)) if d not in tag.parties]
    if len(tag.users) + len(tag.parties) + len(members) + len(parties) > MAX_TAG_ITEMS:
        raise DirectoryError(f"a tag holds at most {MAX_TAG_ITEMS} members and departments")
    tag.users += members
    tag.parties += parties
    org.version += 1
    if not members and not parties:
        return []
    return [TagChange(tag, add_users=tuple(m.userid for m in members), add_parties=tuple(parties))]


def remove_tag_members(org: Org, tag_id: int, fields: dict[str, Any]) -> list[TagChange]:
    """tag/deltagusers: ``{"userlist"?, "partylist"?}``; one update_tag event naming what was removed."""
    tag = tag_of(org, tag_id)
    userids, party_ids = _body(fields)
    members = [m for m in dict.fromkeys(_members(org, userids)) if m in tag.users]
    parties = [d for d in dict.fromkeys(_parties(org, party_ids)) if d in tag.parties]
    tag.users = [m for m in tag.users if m not in members]
    tag.parties = [d for d in tag.parties if d not in parties]
    org.version += 1
    if not members and not parties:
        return []
    return [TagChange(tag, del_users=tuple(m.userid for m in members), del_parties=tuple(parties))]
