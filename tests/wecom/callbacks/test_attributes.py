"""Custom fields by callback: an ExtAttr item writes its field, an empty one clears it, one left out is kept;
renames carry fields and tag memberships along; a deleted member's fields and tag memberships end."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from tests.wecom.callbacks.support import CORP, apply, at, event_xml, rows, seed_tree, store, store_event
from wecom.callbacks.parse import parse_event

FIELDS = (
    "SELECT attr_name, attr_type, text_value, web_url FROM wecom_user_attributes WHERE userid = :u ORDER BY attr_name"
)


def ext_attr(**fields: str | tuple[str, str]) -> str:
    """ExtAttr XML: a text item per str, a web item per (url, title)."""
    items = []
    for name, value in fields.items():
        if isinstance(value, tuple):
            body = f"<Type>1</Type><Web><Title><![CDATA[{value[1]}]]></Title><Url><![CDATA[{value[0]}]]></Url></Web>"
        else:
            body = f"<Type>0</Type><Text><Value><![CDATA[{value}]]></Value></Text>"
        items.append(f"<Item><Name><![CDATA[{name}]]></Name>{body}</Item>")
    return "<ExtAttr>" + "".join(items) + "</ExtAttr>"


def store_with_fields(engine: Engine, change_type: str, seconds: float, ext: str | None, **fields: object) -> None:
    xml = event_xml(change_type, at(seconds), CORP, **fields, **({"ExtAttr": "@"} if ext else {}))
    if ext:
        xml = xml.replace("<ExtAttr><![CDATA[@]]></ExtAttr>", ext)
    store_event(engine, CORP, parse_event(xml), xml, datetime.now(UTC))


def fields(engine: Engine, userid: str) -> list[tuple]:
    return rows(engine, FIELDS, u=userid)


def test_custom_fields_follow_the_events(engine: Engine) -> None:
    seed_tree(engine)
    created = ext_attr(工号="E1", 爱好="跑步", 主页=("https://x", "X"))
    store_with_fields(engine, "create_user", 10, created, UserID="u1", Name="One", Department="2")
    apply(engine)
    assert fields(engine, "u1") == [
        ("主页", "web", None, "https://x"),
        ("工号", "text", "E1", None),
        ("爱好", "text", "跑步", None),
    ]
    store_with_fields(engine, "update_user", 20, ext_attr(工号="E2", 爱好=""), UserID="u1")
    store(engine, "update_user", 30, UserID="u1", Position="Lead")  # no ExtAttr: the fields stay
    apply(engine)
    assert fields(engine, "u1") == [
        ("主页", "web", None, "https://x"),  # left out: kept
        ("工号", "text", "E2", None),
        ("爱好", "text", None, None),  # sent empty: cleared
    ]
    versions = rows(
        engine,
        "SELECT text_value, valid_to IS NULL FROM wecom_user_attributes_history WHERE userid = 'u1' "
        "AND attr_name = '工号' ORDER BY valid_from",
    )
    assert [(v, bool(open_)) for v, open_ in versions] == [("E1", False), ("E2", True)]

    store(engine, "update_tag", 35, TagId=5, AddUserItems="u1", DelUserItems="", AddPartyItems="", DelPartyItems="")
    store(engine, "update_user", 40, UserID="u1", NewUserID="u1new")
    apply(engine)
    assert fields(engine, "u1") == [] and len(fields(engine, "u1new")) == 3, "the fields follow the rename"
    assert rows(engine, "SELECT userid FROM wecom_tag_users WHERE tag_id = 5") == [("u1new",)]
    assert rows(engine, "SELECT COUNT(*) FROM wecom_user_attributes_history WHERE userid = 'u1'") == [(0,)]

    store(engine, "delete_user", 50, UserID="u1new")
    apply(engine)
    assert fields(engine, "u1new") == []
    still_open = "SELECT COUNT(*) FROM wecom_user_attributes_history WHERE userid = 'u1new' AND valid_to IS NULL"
    assert rows(engine, still_open) == [(0,)], "a deleted member's fields end with it"
    assert rows(engine, "SELECT COUNT(*) FROM wecom_tag_users WHERE tag_id = 5") == [(0,)], "and its tags"
    tag_history = "SELECT COUNT(*) FROM wecom_tag_users_history WHERE userid = 'u1new' AND valid_to IS NULL"
    assert rows(engine, tag_history) == [(0,)]
