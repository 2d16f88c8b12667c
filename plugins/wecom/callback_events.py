"""Turn a decrypted change_contact event into a ``wecom_callback_events`` row, stored once.

WeCom redelivers an event until it gets a 200, in no guaranteed order, so the
receiver stores every distinct decrypted message exactly once (keyed by its
sha256) and leaves applying it to the directory to the apply DAG. Events we do
not sync (tags, change types we do not know yet) are kept as ``ignored`` rather
than dropped, so nothing WeCom sent is lost without a trace.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException
from sqlalchemy import Connection, Engine, TextClause, text

from wecom.sql import db_time, read_statement, read_statements

SCHEMA_FILE = "schema/30_callback_events.sql"
INSERT_FILE = "callback_events/insert_event.sql"

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
SYNCED_ENTITY_TYPES = frozenset({"user", "department"})

# Elements that are always lists in the JSON payload, even with one child (ExtAttr/Item).
_LIST_TAGS = frozenset({"Item"})
_MAX_DEPTH = 16


class EventParseError(ValueError):
    """The text is not a well-formed WeCom event; the message never names member data."""


class UnsafeXmlError(EventParseError):
    """The XML declares a DTD or entities (billion laughs, external entities)."""


def parse_xml(data: bytes | str) -> Element:
    """Parse untrusted XML, refusing any DTD: WeCom never sends one."""
    try:
        return safe_et.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise UnsafeXmlError("XML declares a DTD or entities") from None
    except ParseError:
        raise EventParseError("not well-formed XML") from None


def _to_json(element: Element, depth: int = 0) -> str | dict[str, Any]:
    """A leaf's text, or a dict of the children by tag; repeated tags collect into lists."""
    if depth > _MAX_DEPTH:
        raise EventParseError(f"event XML is nested deeper than {_MAX_DEPTH} levels")
    if len(element) == 0:
        return element.text or ""
    result: dict[str, Any] = {}
    for child in element:
        value = _to_json(child, depth + 1)
        if child.tag in _LIST_TAGS:
            result.setdefault(child.tag, []).append(value)
        elif child.tag not in result:
            result[child.tag] = value
        else:
            previous = result[child.tag]
            result[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
    return result


def _text(payload: dict[str, Any], field: str) -> str | None:
    value = payload.get(field)
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
    """Parse a decrypted callback message.

    Known user/department changes become ``pending``; tag events, other events
    (e.g. ``batch_job_result``) and unknown change types become ``ignored``.
    """
    root = parse_xml(xml_text)
    if root.tag != "xml":
        raise EventParseError("event root element is not <xml>")
    payload = _to_json(root)
    if not isinstance(payload, dict):
        raise EventParseError("event has no fields")
    change_type = _text(payload, "ChangeType") or _text(payload, "Event") or _text(payload, "MsgType")
    if change_type is None:
        raise EventParseError("event names no ChangeType, Event or MsgType")
    created = _text(payload, "CreateTime")
    if created is None or not created.isdigit():
        raise EventParseError("event has no numeric CreateTime")
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
        status="pending" if entity_type in SYNCED_ENTITY_TYPES else "ignored",
    )


def dedup_key(raw_message: str) -> str:
    """sha256 hex of the decrypted message: identical for every redelivery of one event."""
    return hashlib.sha256(raw_message.encode("utf-8")).hexdigest()


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A transaction on ``bind``; joins the caller's when a connection is already in one."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            yield connection
    elif bind.in_transaction():
        yield bind
    else:
        with bind.begin():
            yield bind


@cache
def _insert_statement(dialect: str) -> TextClause:
    return text(read_statement(INSERT_FILE, dialect))


def ensure_callback_events_table(bind: Engine | Connection) -> None:
    """Create ``wecom_callback_events`` and its indexes if missing (idempotent)."""
    with _transaction(bind) as connection:
        for statement in read_statements(SCHEMA_FILE, connection.dialect.name):
            connection.execute(text(statement))


def store_event(
    bind: Engine | Connection,
    corp_id: str,
    parsed: ParsedEvent,
    raw_message: str,
    received_at: datetime,
    *,
    conn_id: str | None = None,
) -> bool:
    """Store an event in one transaction; True if new, False if it is a redelivery.

    A redelivery leaves the row as it is apart from ``delivery_count`` and
    ``last_received_at``, so a row the apply DAG already handled stays handled.
    """
    dialect = bind.dialect.name
    params = {
        "conn_id": conn_id,
        "corp_id": corp_id,
        "dedup_key": dedup_key(raw_message),
        "received_at": db_time(received_at, dialect),
        "create_time": db_time(parsed.create_time, dialect),
        "change_type": parsed.change_type,
        "entity_type": parsed.entity_type,
        "entity_id": parsed.entity_id,
        "new_entity_id": parsed.new_entity_id,
        "payload": json.dumps(parsed.payload, ensure_ascii=False, separators=(",", ":")),
        "status": parsed.status,
    }
    with _transaction(bind) as connection:
        delivery_count = connection.execute(_insert_statement(dialect), params).scalar_one()
    return delivery_count == 1
