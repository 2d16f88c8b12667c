"""Parsing decrypted change_contact events and storing each distinct one exactly once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from wecom.callback_events import (
    EventParseError,
    UnsafeXmlError,
    dedup_key,
    ensure_callback_events_table,
    parse_event,
    store_event,
)
from wecom.hooks.target_db import create_target_engine
from wecom.sql import parse_db_time

CORP_ID = "ww0123456789abcdef"
CREATE_TIME = 1700000000


def event_xml(change_type: str, fields: str, *, create_time: int = CREATE_TIME) -> str:
    """A decrypted contact-change event as WeCom sends it."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType>{change_type}</ChangeType>{fields}</xml>"
    )


EXT_ATTR = (
    "<ExtAttr><Item><Name><![CDATA[爱好]]></Name><Type>0</Type><Text><Value><![CDATA[旅游]]></Value></Text></Item>"
    "<Item><Name><![CDATA[主页]]></Name><Type>1</Type><Web><Title><![CDATA[企业微信]]></Title>"
    "<Url><![CDATA[https://work.weixin.qq.com]]></Url></Web></Item></ExtAttr>"
)
USER_FIELDS = (
    "<Name><![CDATA[张三]]></Name><Department><![CDATA[1,2,3]]></Department><MainDepartment>1</MainDepartment>"
    "<IsLeaderInDept><![CDATA[1,0,0]]></IsLeaderInDept><DirectLeader><![CDATA[lisi,wangwu]]></DirectLeader>"
    "<Position><![CDATA[产品经理]]></Position><Mobile>13800000000</Mobile><Gender>1</Gender>"
    "<Email><![CDATA[zhangsan@example.com]]></Email><BizMail><![CDATA[zhangsan@corp.example.com]]></BizMail>"
    "<Status>1</Status><Avatar><![CDATA[http://wx.qlogo.cn/mmopen/ajNVdqHZLLA3]]></Avatar>"
    "<Alias><![CDATA[zhangsan]]></Alias><Telephone><![CDATA[020-123456]]></Telephone>"
    "<Address><![CDATA[广州市]]></Address>" + EXT_ATTR
)

# name -> (event XML, change_type, entity_type, entity_id, new_entity_id, status)
EVENTS: dict[str, tuple[str, str, str | None, str | None, str | None, str]] = {
    "create_user_full": (
        event_xml("create_user", "<UserID><![CDATA[zhangsan]]></UserID>" + USER_FIELDS),
        "create_user",
        "user",
        "zhangsan",
        None,
        "pending",
    ),
    "create_user_ids_only": (
        event_xml("create_user", "<UserID>zhangsan</UserID><Department>1,2</Department>"),
        "create_user",
        "user",
        "zhangsan",
        None,
        "pending",
    ),
    "update_user_full": (
        event_xml(
            "update_user",
            "<UserID>zhangsan</UserID><NewUserID>zhangsan2</NewUserID><Name>张三丰</Name>"
            "<Department>1,2</Department><Status>2</Status>" + EXT_ATTR,
        ),
        "update_user",
        "user",
        "zhangsan",
        "zhangsan2",
        "pending",
    ),
    "update_user_ids_only": (
        event_xml("update_user", "<UserID>lisi</UserID><Department>3</Department>"),
        "update_user",
        "user",
        "lisi",
        None,
        "pending",
    ),
    "delete_user": (
        event_xml("delete_user", "<UserID>wangwu</UserID>"),
        "delete_user",
        "user",
        "wangwu",
        None,
        "pending",
    ),
    "create_party_full": (
        event_xml("create_party", "<Id>2</Id><Name><![CDATA[研发部]]></Name><ParentId>1</ParentId><Order>100</Order>"),
        "create_party",
        "department",
        "2",
        None,
        "pending",
    ),
    "create_party_ids_only": (
        event_xml("create_party", "<Id>3</Id><ParentId>1</ParentId>"),
        "create_party",
        "department",
        "3",
        None,
        "pending",
    ),
    "update_party_full": (
        event_xml("update_party", "<Id>2</Id><Name><![CDATA[研发中心]]></Name><ParentId>1</ParentId>"),
        "update_party",
        "department",
        "2",
        None,
        "pending",
    ),
    "update_party_ids_only": (
        event_xml("update_party", "<Id>2</Id><ParentId>4</ParentId>"),
        "update_party",
        "department",
        "2",
        None,
        "pending",
    ),
    "delete_party": (event_xml("delete_party", "<Id>5</Id>"), "delete_party", "department", "5", None, "pending"),
    "update_tag": (
        event_xml(
            "update_tag",
            "<TagId>7</TagId><AddUserItems><![CDATA[zhangsan,lisi]]></AddUserItems>"
            "<DelUserItems><![CDATA[wangwu]]></DelUserItems><AddPartyItems><![CDATA[1,2]]></AddPartyItems>"
            "<DelPartyItems><![CDATA[3]]></DelPartyItems>",
        ),
        "update_tag",
        "tag",
        "7",
        None,
        "ignored",
    ),
    "unknown_change_type": (
        event_xml("merge_universe", "<UserID>zhangsan</UserID>"),
        "merge_universe",
        None,
        None,
        None,
        "ignored",
    ),
}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}", timeout_s=2)
    ensure_callback_events_table(engine)
    return engine


def rows(engine: Engine) -> list[dict]:
    with engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM wecom_callback_events ORDER BY event_id"))
        return [dict(row._mapping) for row in result]


# Parsing


@pytest.mark.parametrize("name", list(EVENTS))
def test_parse_every_change_type(name: str) -> None:
    xml, change_type, entity_type, entity_id, new_entity_id, status = EVENTS[name]
    parsed = parse_event(xml)
    assert (parsed.change_type, parsed.entity_type, parsed.entity_id) == (change_type, entity_type, entity_id)
    assert (parsed.new_entity_id, parsed.status) == (new_entity_id, status)
    assert parsed.create_time == datetime.fromtimestamp(CREATE_TIME, UTC)
    assert parsed.payload["ChangeType"] == change_type
    assert parsed.payload["FromUserName"] == "sys"


def test_payload_keeps_xml_field_names_and_ext_attr_items() -> None:
    payload = parse_event(EVENTS["create_user_full"][0]).payload
    assert payload["UserID"] == "zhangsan"
    assert payload["Department"] == "1,2,3"
    assert payload["Name"] == "张三"
    assert payload["CreateTime"] == str(CREATE_TIME)
    assert payload["ExtAttr"] == {
        "Item": [
            {"Name": "爱好", "Type": "0", "Text": {"Value": "旅游"}},
            {"Name": "主页", "Type": "1", "Web": {"Title": "企业微信", "Url": "https://work.weixin.qq.com"}},
        ]
    }


def test_single_ext_attr_item_is_still_a_list_and_empty_elements_are_empty_strings() -> None:
    xml = event_xml(
        "update_user",
        "<UserID>u1</UserID><Alias/><ExtAttr><Item><Name>n</Name><Type>1</Type><Web><Title/><Url/></Web>"
        "</Item></ExtAttr>",
    )
    payload = parse_event(xml).payload
    assert payload["Alias"] == ""
    assert payload["ExtAttr"] == {"Item": [{"Name": "n", "Type": "1", "Web": {"Title": "", "Url": ""}}]}


def test_other_events_are_ignored_not_rejected() -> None:
    xml = (
        "<xml><ToUserName>c</ToUserName><FromUserName>sys</FromUserName><CreateTime>1700000000</CreateTime>"
        "<MsgType>event</MsgType><Event>batch_job_result</Event><BatchJob><JobId>j1</JobId></BatchJob></xml>"
    )
    parsed = parse_event(xml)
    assert (parsed.change_type, parsed.entity_type, parsed.status) == ("batch_job_result", None, "ignored")
    assert parsed.payload["BatchJob"] == {"JobId": "j1"}


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<xml><UserID>&lol3;</UserID></xml>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><UserID>&xxe;</UserID></xml>'
)
BARE_DOCTYPE = '<!DOCTYPE xml SYSTEM "http://example.com/x.dtd"><xml><CreateTime>1</CreateTime></xml>'


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, BARE_DOCTYPE])
def test_dtds_and_entities_are_refused(xml: str) -> None:
    with pytest.raises(UnsafeXmlError):
        parse_event(xml)


@pytest.mark.parametrize(
    ("xml", "match"),
    [
        ("not xml at all", "well-formed"),
        ("<xml><UserID>a</UserID>", "well-formed"),
        ("<root><CreateTime>1</CreateTime></root>", "root"),
        ("<xml/>", "no fields"),
        ("<xml><CreateTime>1</CreateTime></xml>", "ChangeType"),
        (event_xml("update_user", "<UserID>a</UserID>").replace(str(CREATE_TIME), "yesterday"), "CreateTime"),
        (event_xml("delete_user", ""), "UserID"),
        (event_xml("delete_party", "<Id></Id>"), "Id"),
        (event_xml("update_user", "<UserID>a</UserID>" + "<X>" * 40 + "</X>" * 40), "nested"),
    ],
)
def test_malformed_events_are_rejected_without_member_data(xml: str, match: str) -> None:
    with pytest.raises(EventParseError, match=match) as excinfo:
        parse_event(xml)
    assert "zhangsan" not in str(excinfo.value)


# Storing


def test_store_every_change_type_with_its_columns(engine: Engine) -> None:
    received_at = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    for name, (xml, *_rest) in EVENTS.items():
        assert store_event(engine, CORP_ID, parse_event(xml), xml, received_at, conn_id=name)
    stored = {row["conn_id"]: row for row in rows(engine)}
    assert set(stored) == set(EVENTS)
    for name, (xml, change_type, entity_type, entity_id, new_entity_id, status) in EVENTS.items():
        row = stored[name]
        assert row["corp_id"] == CORP_ID
        assert row["dedup_key"] == dedup_key(xml)
        assert (row["change_type"], row["entity_type"], row["entity_id"]) == (change_type, entity_type, entity_id)
        assert (row["new_entity_id"], row["status"]) == (new_entity_id, status)
        assert parse_db_time(row["received_at"]) == received_at
        assert parse_db_time(row["last_received_at"]) == received_at
        assert parse_db_time(row["create_time"]) == datetime.fromtimestamp(CREATE_TIME, UTC)
        assert json.loads(row["payload"]) == parse_event(xml).payload
        assert (row["attempts"], row["delivery_count"]) == (0, 1)
        assert row["last_error"] is None and row["applied_at"] is None and row["run_id"] is None


def test_redelivery_is_stored_once_and_counted(engine: Engine) -> None:
    xml = EVENTS["update_user_full"][0]
    first = datetime(2024, 5, 1, tzinfo=UTC)
    later = datetime(2024, 5, 1, 0, 0, 7, tzinfo=UTC)
    assert store_event(engine, CORP_ID, parse_event(xml), xml, first) is True
    assert store_event(engine, CORP_ID, parse_event(xml), xml, later) is False
    assert store_event(engine, CORP_ID, parse_event(xml), xml, later) is False
    (row,) = rows(engine)
    assert row["delivery_count"] == 3
    assert parse_db_time(row["received_at"]) == first
    assert parse_db_time(row["last_received_at"]) == later


def test_redelivery_leaves_a_handled_row_alone(engine: Engine) -> None:
    xml = EVENTS["delete_user"][0]
    now = datetime.now(UTC)
    store_event(engine, CORP_ID, parse_event(xml), xml, now)
    with engine.begin() as connection:
        connection.execute(text("UPDATE wecom_callback_events SET status = 'applied', attempts = 1"))
    assert store_event(engine, CORP_ID, parse_event(xml), xml, now) is False
    (row,) = rows(engine)
    assert (row["status"], row["attempts"], row["delivery_count"]) == ("applied", 1, 2)


def test_dedup_is_per_corp_and_per_exact_message(engine: Engine) -> None:
    xml = EVENTS["delete_user"][0]
    same_change_other_time = event_xml("delete_user", "<UserID>wangwu</UserID>", create_time=CREATE_TIME + 1)
    now = datetime.now(UTC)
    assert store_event(engine, CORP_ID, parse_event(xml), xml, now)
    assert store_event(engine, "ww_other_corp", parse_event(xml), xml, now)
    assert store_event(engine, CORP_ID, parse_event(same_change_other_time), same_change_other_time, now)
    assert len(rows(engine)) == 3


def test_store_joins_the_callers_transaction(engine: Engine) -> None:
    xml = EVENTS["delete_party"][0]
    with engine.connect() as connection:
        transaction = connection.begin()
        assert store_event(connection, CORP_ID, parse_event(xml), xml, datetime.now(UTC))
        transaction.rollback()
    assert rows(engine) == []
    with engine.connect() as connection:
        assert store_event(connection, CORP_ID, parse_event(xml), xml, datetime.now(UTC))
    assert len(rows(engine)) == 1


def test_schema_is_idempotent_and_indexed(engine: Engine) -> None:
    ensure_callback_events_table(engine)
    ensure_callback_events_table(engine)
    with engine.connect() as connection:
        indexes = {
            row[0]
            for row in connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'wecom_callback_events'")
            )
        }
        plan = " ".join(
            str(row[-1])
            for row in connection.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT event_id FROM wecom_callback_events "
                    "WHERE corp_id = :c AND status = 'pending' ORDER BY create_time, event_id"
                ),
                {"c": CORP_ID},
            )
        )
    assert {"wecom_callback_events_queue", "wecom_callback_events_by_entity"} <= indexes
    assert "wecom_callback_events_queue" in plan and "TEMP B-TREE" not in plan


def test_status_must_be_a_known_one(engine: Engine) -> None:
    store_event(engine, CORP_ID, parse_event(EVENTS["delete_user"][0]), EVENTS["delete_user"][0], datetime.now(UTC))
    with pytest.raises(Exception, match="CHECK"), engine.begin() as connection:
        connection.execute(text("UPDATE wecom_callback_events SET status = 'done'"))


def test_naive_received_at_is_refused(engine: Engine) -> None:
    xml = EVENTS["delete_user"][0]
    with pytest.raises(ValueError, match="naive"):
        store_event(engine, CORP_ID, parse_event(xml), xml, datetime(2024, 1, 1))


@pytest.mark.postgres
def test_postgres_store_and_redelivery(postgres_url: str) -> None:
    engine = create_target_engine(postgres_url, timeout_s=5)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS wecom_callback_events"))
    ensure_callback_events_table(engine)
    ensure_callback_events_table(engine)
    now = datetime.now(UTC)
    for xml, *_ in EVENTS.values():
        assert store_event(engine, CORP_ID, parse_event(xml), xml, now, conn_id="pg")
    xml = EVENTS["update_user_full"][0]
    assert store_event(engine, CORP_ID, parse_event(xml), xml, now) is False
    with engine.connect() as connection:
        count, deliveries = connection.execute(
            text("SELECT COUNT(*), SUM(delivery_count) FROM wecom_callback_events")
        ).one()
        create_time = connection.execute(text("SELECT MIN(create_time) FROM wecom_callback_events")).scalar_one()
    assert (count, deliveries) == (len(EVENTS), len(EVENTS) + 1)
    assert create_time == datetime.fromtimestamp(CREATE_TIME, UTC)
    engine.dispose()
