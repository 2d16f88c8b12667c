"""Turn a decrypted change_contact message into the event the receiver stores, or refuse it.

The message arrives signed and encrypted, but that only proves WeCom (or
whoever holds the AES key) sent it, not that each field is usable: every field
the apply DAG interprets is checked here against the format WeCom documents,
so a malformed one is a 400 with a one-line reason instead of a row that fails
later or an error deep in the request. Reasons name the field, never its value.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError, XMLParser

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from wecom.errors import EventParseError, UnsafeXmlError
from wecom.runs import EventStatus

# change type -> (entity type, the XML field that names the entity)
ENTITY_OF_CHANGE: dict[str, tuple[str, str]] = {
    "create_user": ("user", "UserID"),
    "update_user": ("user", "UserID"),
    "delete_user": ("user", "UserID"),
    "create_party": ("department", "Id"),
    "update_party": ("department", "Id"),
    "delete_party": ("department", "Id"),
    "update_tag": ("tag", "TagId"),
}
SYNCED_ENTITY_TYPES = frozenset({"user", "department", "tag"})

MAX_DEPTH = 16
MAX_FIELDS = 1000
MAX_FIELD_CHARS = 4096

_NAME = r"[A-Za-z0-9_]{1,64}"
# WeCom: a userid is 1-64 letters, digits and "_-@.".
_USERID = r"[A-Za-z0-9_@.\-]{1,64}"
_NUMBER = r"[0-9]{1,10}"


def _list_of(item: str) -> str:
    return rf"(?:{item}(?:,{item})*)?"


# The top-level fields with a documented format; each is checked when present.
FIELD_FORMATS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.ASCII)
    for name, pattern in {
        "CreateTime": r"[1-9][0-9]{0,9}",  # unix seconds
        "MsgType": _NAME,
        "Event": _NAME,
        "ChangeType": _NAME,
        "UserID": _USERID,
        "NewUserID": _USERID,
        "Id": _NUMBER,
        "ParentId": _NUMBER,
        "Order": _NUMBER,
        "TagId": _NUMBER,
        "MainDepartment": _NUMBER,
        "Status": _NUMBER,
        "Gender": _NUMBER,
        "Department": _list_of(_NUMBER),
        "IsLeaderInDept": _list_of("[01]"),
        "DirectLeader": _list_of(_USERID),
        "AddUserItems": _list_of(_USERID),
        "DelUserItems": _list_of(_USERID),
        "AddPartyItems": _list_of(_NUMBER),
        "DelPartyItems": _list_of(_NUMBER),
    }.items()
}

# Elements that are always lists in the JSON payload, even with one child (ExtAttr/Item).
_LIST_TAGS = frozenset({"Item"})


# The start of a document whose prolog holds nothing but an XML declaration: no DOCTYPE, so no
# entity can be declared (only the five predefined ones and character references parse).
_PLAIN_PROLOG = re.compile(r"\s*(?:<\?xml\s[^<>]*\?>\s*)?<[A-Za-z_]")
_PLAIN_PROLOG_BYTES = re.compile(_PLAIN_PROLOG.pattern.encode("ascii"))


def parse_xml(data: bytes | str) -> Element:
    """Parse untrusted XML, refusing any DTD: WeCom never sends one.

    A DTD can only stand in the prolog, before the root element. When the prolog is plain, the
    document cannot declare an entity, so the C parser reads it (several times faster than
    defusedxml's Python handlers, which build the tree one callback at a time); any other
    prolog (a DOCTYPE, a comment, a byte-order mark) goes through defusedxml as before.
    """
    plain = _PLAIN_PROLOG_BYTES if isinstance(data, bytes) else _PLAIN_PROLOG
    try:
        if plain.match(data):
            parser = XMLParser()  # noqa: S314 (no DTD, so no entity to expand: see above)
            parser.feed(data)
            return parser.close()
        return safe_et.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise UnsafeXmlError("XML declares a DTD or entities") from None
    except ParseError:
        raise EventParseError("not well-formed XML") from None


def _tag(element: Element) -> str:
    """The tag for a reason line, shortened: it comes from the sender."""
    return element.tag if len(element.tag) <= 40 else element.tag[:40] + "..."


class _Converter:
    """XML -> JSON-ready dict, bounding depth, field count and field size as it goes."""

    def __init__(self) -> None:
        self.fields = 0

    def convert(self, element: Element, depth: int = 0) -> str | dict[str, Any]:
        """A leaf's text, or a dict of the children by tag; repeated tags collect into lists."""
        self.fields += 1
        if depth > MAX_DEPTH:
            raise EventParseError(f"event XML is nested deeper than {MAX_DEPTH} levels")
        if self.fields > MAX_FIELDS:
            raise EventParseError(f"event has more than {MAX_FIELDS} elements")
        if len(element) == 0:
            text = element.text or ""
            if len(text) > MAX_FIELD_CHARS:
                raise EventParseError(f"field {_tag(element)} is longer than {MAX_FIELD_CHARS} characters")
            return text
        result: dict[str, Any] = {}
        for child in element:
            value = self.convert(child, depth + 1)
            if child.tag in _LIST_TAGS:
                result.setdefault(child.tag, []).append(value)
            elif child.tag not in result:
                result[child.tag] = value
            else:
                previous = result[child.tag]
                result[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        return result


def _check_formats(payload: dict[str, Any]) -> None:
    for name, pattern in FIELD_FORMATS.items():
        if name not in payload:
            continue
        value = payload[name]
        if not isinstance(value, str):
            raise EventParseError(f"field {name} is repeated or has child elements")
        if not pattern.fullmatch(value):
            raise EventParseError(f"field {name} is malformed")
    if "ExtAttr" in payload and not _ext_attr_ok(payload["ExtAttr"]):
        raise EventParseError("field ExtAttr is malformed")


# The documented parts of an ExtAttr item that are groups, with their leaves.
_ITEM_GROUPS = {"Text": frozenset({"Value"}), "Web": frozenset({"Title", "Url"})}
_ITEM_TYPE = re.compile(r"[0-9]{1,2}", re.ASCII)


def _ext_attr_ok(value: Any) -> bool:
    """``<ExtAttr>`` holds only ``<Item>``s, each with a non-empty Name and a numeric Type; a ``<Text>``
    holds only Value, a ``<Web>`` only Title and Url. Parts WeCom may add (another type's group) are
    accepted when they are text or a group of texts. An empty ExtAttr says the member has no custom fields."""
    if value == "":
        return True
    if not isinstance(value, dict) or set(value) - {"Item"}:
        return False
    return all(_item_ok(item) for item in value.get("Item", []))


def _item_ok(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    name, kind = item.get("Name"), item.get("Type")
    if not isinstance(name, str) or not name or not isinstance(kind, str) or not _ITEM_TYPE.fullmatch(kind):
        return False
    for part, group in item.items():
        if isinstance(group, str):
            continue
        if not isinstance(group, dict) or not all(isinstance(v, str) for v in group.values()):
            return False
        if part in _ITEM_GROUPS and set(group) - _ITEM_GROUPS[part]:
            return False
    return True


def _text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ParsedEvent:
    """One event as stored: the columns the apply DAG queries, and the full payload."""

    change_type: str
    entity_type: str | None
    entity_id: str | None
    new_entity_id: str | None
    create_time: datetime
    payload: dict[str, Any]
    status: str


def parse_event(xml_text: str) -> ParsedEvent:
    """Parse and check a decrypted callback message; raise ``EventParseError`` naming the bad field.

    Known user, department and tag changes become ``pending``; other events
    (e.g. ``batch_job_result``) and unknown change types become ``ignored``.
    """
    root = parse_xml(xml_text)
    if root.tag != "xml":
        raise EventParseError("event root element is not <xml>")
    payload = _Converter().convert(root)
    if not isinstance(payload, dict):
        raise EventParseError("event has no fields")
    _check_formats(payload)
    if payload.get("Event") == "change_contact" and _text(payload, "ChangeType") is None:
        raise EventParseError("change_contact event has no ChangeType")
    change_type = _text(payload, "ChangeType") or _text(payload, "Event") or _text(payload, "MsgType")
    if change_type is None:
        raise EventParseError("event names no ChangeType, Event or MsgType")
    created = _text(payload, "CreateTime")
    if created is None:
        raise EventParseError("event has no CreateTime")
    entity_type, id_field = ENTITY_OF_CHANGE.get(change_type, (None, ""))
    entity_id = _text(payload, id_field) if id_field else None
    if entity_type in SYNCED_ENTITY_TYPES and entity_id is None:
        raise EventParseError(f"{change_type} event has no {id_field}")
    return ParsedEvent(
        change_type=change_type,
        entity_type=entity_type,
        entity_id=entity_id,
        new_entity_id=_text(payload, "NewUserID") if entity_type == "user" else None,
        create_time=datetime.fromtimestamp(int(created), UTC),
        payload=payload,
        status=EventStatus.PENDING if entity_type in SYNCED_ENTITY_TYPES else EventStatus.IGNORED,
    )


def dedup_key(raw_message: str) -> str:
    """sha256 hex of the decrypted message: identical for every redelivery of one event."""
    return hashlib.sha256(raw_message.encode("utf-8")).hexdigest()
