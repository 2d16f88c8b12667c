"""Parsing decrypted change_contact events: every change type, and every malformed field refused."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import defusedxml.ElementTree as safe_et
import pytest

from wecom.callbacks.parse import FIELD_FORMATS, MAX_FIELD_CHARS, parse_event, parse_xml
from wecom.errors import EventParseError, UnsafeXmlError

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
        "pending",
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


# A DOCTYPE behind other prolog content: a comment, a processing instruction, a byte-order mark.
DOCTYPE_AFTER_COMMENT = "<!-- hello --><!DOCTYPE xml [<!ENTITY e 'x'>]><xml><UserID>&e;</UserID></xml>"
DOCTYPE_AFTER_PI = '<?xml version="1.0"?><?pi data?><!DOCTYPE xml [<!ENTITY e "x">]><xml><UserID>&e;</UserID></xml>'
DOCTYPE_AFTER_BOM = "\ufeff" + EXTERNAL_ENTITY


@pytest.mark.parametrize(
    "xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, BARE_DOCTYPE, DOCTYPE_AFTER_COMMENT, DOCTYPE_AFTER_PI, DOCTYPE_AFTER_BOM]
)
@pytest.mark.parametrize("kind", [str, bytes])
def test_dtds_and_entities_are_refused(xml: str, kind: type) -> None:
    with pytest.raises(UnsafeXmlError):
        parse_xml(xml if kind is str else xml.encode("utf-8"))


def test_an_undeclared_entity_is_malformed_not_expanded() -> None:
    with pytest.raises(EventParseError, match="not well-formed"):
        parse_event(MEMBER.replace("</xml>", "<Alias>&undeclared;</Alias></xml>"))


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_the_plain_prolog_parse_reads_what_defusedxml_reads(name: str) -> None:
    """The C parser that reads DTD-free documents builds the same tree as defusedxml; a comment in the
    prolog (which takes defusedxml's path) changes nothing either."""
    xml = EVENTS[name][0]
    expected = ET.tostring(safe_et.fromstring(xml, forbid_dtd=True))
    assert ET.tostring(parse_xml(xml)) == expected
    assert ET.tostring(parse_xml(xml.encode("utf-8"))) == expected
    assert ET.tostring(parse_xml("<!-- a comment -->" + xml)) == expected


def with_field(xml: str, name: str, value: str) -> str:
    """``xml`` with the first ``name`` field holding ``value`` (raw XML), added when absent."""
    field = re.compile(rf"<{name}>.*?</{name}>", re.DOTALL)
    replacement = f"<{name}>{value}</{name}>"
    if field.search(xml):
        return field.sub(lambda _: replacement, xml, count=1)
    return xml.replace("</xml>", f"{replacement}</xml>")


def without_field(xml: str, name: str) -> str:
    return re.sub(rf"<{name}>.*?</{name}>", "", xml, count=1, flags=re.DOTALL)


MEMBER = EVENTS["create_user_full"][0]
PARTY = EVENTS["update_party_full"][0]
TAG = EVENTS["update_tag"][0]

# name -> (decrypted event, what the one-line reason names); every one is a 400 at the receiver.
MALFORMED: dict[str, tuple[str, str]] = {
    "not XML": ("not xml at all", "well-formed"),
    "truncated XML": ("<xml><UserID>a</UserID>", "well-formed"),
    "root not <xml>": ("<root><CreateTime>1</CreateTime></root>", "root"),
    "no fields": ("<xml/>", "no fields"),
    "no change type at all": ("<xml><CreateTime>1</CreateTime></xml>", "ChangeType"),
    "CreateTime a word": (with_field(MEMBER, "CreateTime", "yesterday"), "CreateTime"),
    "CreateTime superscript two": (with_field(MEMBER, "CreateTime", "²"), "CreateTime"),
    "CreateTime fullwidth digits": (with_field(MEMBER, "CreateTime", "１７００００００００"), "CreateTime"),
    "CreateTime 1e20": (with_field(MEMBER, "CreateTime", "1e20"), "CreateTime"),
    "CreateTime 10**20": (with_field(MEMBER, "CreateTime", "1" + "0" * 20), "CreateTime"),
    "CreateTime negative": (with_field(MEMBER, "CreateTime", "-1700000000"), "CreateTime"),
    "CreateTime zero": (with_field(MEMBER, "CreateTime", "0"), "CreateTime"),
    "CreateTime padded": (with_field(MEMBER, "CreateTime", " 1700000000"), "CreateTime"),
    "CreateTime missing": (without_field(MEMBER, "CreateTime"), "CreateTime"),
    "CreateTime with children": (with_field(MEMBER, "CreateTime", "<a>1</a>"), "CreateTime"),
    "ChangeType missing": (without_field(MEMBER, "ChangeType"), "ChangeType"),
    "ChangeType empty": (with_field(MEMBER, "ChangeType", ""), "ChangeType"),
    "ChangeType with spaces": (with_field(MEMBER, "ChangeType", "create user"), "ChangeType"),
    "UserID missing": (event_xml("delete_user", ""), "UserID"),
    "UserID empty": (with_field(MEMBER, "UserID", ""), "UserID"),
    "UserID with a space": (with_field(MEMBER, "UserID", "zhang san"), "UserID"),
    "UserID with a comma": (with_field(MEMBER, "UserID", "zhangsan,lisi"), "UserID"),
    "UserID over 64 characters": (with_field(MEMBER, "UserID", "z" * 65), "UserID"),
    "UserID not ASCII": (with_field(MEMBER, "UserID", "张三"), "UserID"),
    "UserID twice": (MEMBER.replace("</xml>", "<UserID>lisi</UserID></xml>"), "UserID"),
    "NewUserID malformed": (with_field(EVENTS["update_user_full"][0], "NewUserID", "a/b"), "NewUserID"),
    "Department not numbers": (with_field(MEMBER, "Department", "1,x"), "Department"),
    "Department trailing comma": (with_field(MEMBER, "Department", "1,2,"), "Department"),
    "MainDepartment negative": (with_field(MEMBER, "MainDepartment", "-1"), "MainDepartment"),
    "IsLeaderInDept not flags": (with_field(MEMBER, "IsLeaderInDept", "1,2"), "IsLeaderInDept"),
    "DirectLeader malformed": (with_field(MEMBER, "DirectLeader", "lisi;wangwu"), "DirectLeader"),
    "Status a word": (with_field(MEMBER, "Status", "active"), "Status"),
    "party Id empty": (event_xml("delete_party", "<Id></Id>"), "Id"),
    "party Id a word": (with_field(PARTY, "Id", "abc"), "Id"),
    "party Id over 10 digits": (with_field(PARTY, "Id", "1" * 11), "Id"),
    "ParentId negative": (with_field(PARTY, "ParentId", "-1"), "ParentId"),
    "TagId a word": (with_field(TAG, "TagId", "seven"), "TagId"),
    "AddPartyItems malformed": (with_field(TAG, "AddPartyItems", "1;2"), "AddPartyItems"),
    "AddUserItems with a space": (with_field(TAG, "AddUserItems", "zhangsan, lisi"), "AddUserItems"),
    "AddUserItems trailing comma": (with_field(TAG, "AddUserItems", "zhangsan,"), "AddUserItems"),
    "DelUserItems not ASCII": (with_field(TAG, "DelUserItems", "张三"), "DelUserItems"),
    "DelPartyItems a word": (with_field(TAG, "DelPartyItems", "abc"), "DelPartyItems"),
    "TagId missing": (without_field(TAG, "TagId"), "TagId"),
    "ExtAttr item without a name": (MEMBER.replace("<Name><![CDATA[爱好]]></Name>", ""), "ExtAttr"),
    "ExtAttr item type a word": (MEMBER.replace("<Type>0</Type>", "<Type>text</Type>", 1), "ExtAttr"),
    "ExtAttr text with a stray part": (MEMBER.replace("<Value>", "<Color>red</Color><Value>", 1), "ExtAttr"),
    "ExtAttr with text beside items": (MEMBER.replace("<ExtAttr>", "<ExtAttr><Note>x</Note>", 1), "ExtAttr"),
    "huge Name": (with_field(MEMBER, "Name", "x" * (MAX_FIELD_CHARS + 1)), "Name"),
    "huge ExtAttr value": (MEMBER.replace("旅游", "x" * (MAX_FIELD_CHARS + 1)), "Value"),
    "too many elements": (MEMBER.replace("</xml>", "<X/>" * 1000 + "</xml>"), "more than"),
    "nested too deep": (event_xml("update_user", "<UserID>a</UserID>" + "<X>" * 40 + "</X>" * 40), "nested"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_events_are_rejected_naming_the_field_not_its_value(name: str) -> None:
    xml, names = MALFORMED[name]
    with pytest.raises(EventParseError, match=names) as excinfo:
        parse_event(xml)
    reason = str(excinfo.value)
    assert "\n" not in reason and len(reason) < 200
    assert not any(value in reason for value in ("zhangsan", "张三", "lisi", "1,x", "abc", "active"))


# Values a fuzzer would try in every field with a documented format.
NASTY_VALUES = (
    "",
    " ",
    "²",
    "1e20",
    "-1",
    "0",
    "1" * 30,
    "１２",
    "1.5",
    "0x10",
    "NaN",
    "a,b",
    "a b",
    "&lt;x&gt;",
    "\u202e1",
    "<n>1</n>",
    "x" * (MAX_FIELD_CHARS + 1),
)


@pytest.mark.parametrize("name", sorted(FIELD_FORMATS))
def test_fuzzed_fields_are_accepted_only_when_well_formed(name: str) -> None:
    for base in (MEMBER, PARTY, TAG):
        for value in NASTY_VALUES:
            xml = with_field(base, name, value)
            try:
                parsed = parse_event(xml)
            except EventParseError as exc:
                assert "\n" not in str(exc)
                continue
            text = value.replace("&lt;", "<").replace("&gt;", ">")
            assert FIELD_FORMATS[name].fullmatch(text), (name, value)
            assert parsed.create_time.year < 2300
