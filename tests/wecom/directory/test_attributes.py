"""Custom fields (extattr) -> one row per attribute: each type's values, empty ones cleared, absent ones left out."""

from __future__ import annotations

from typing import Any

import pandas as pd

from wecom.directory.attributes import transform_attributes

CORP = "wwcorp"


def rows(records: list[dict[str, Any]]) -> list[tuple]:
    frame = transform_attributes(pd.DataFrame(records), CORP)
    columns = ["userid", "attr_name", "attr_type", "text_value", "web_url", "web_title", "miniprogram_title"]
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame[columns].itertuples(index=False)]


def test_every_type_fills_its_own_columns() -> None:
    attrs = [
        {"type": 0, "name": "工号", "text": {"value": "E1"}},
        {"type": 1, "name": "主页", "web": {"url": "https://x", "title": "X"}},
        {"type": 2, "name": "名片", "miniprogram": {"appid": "wx1", "pagepath": "/p", "title": "卡"}},
        {"type": 0, "name": "旧格式", "value": "flat"},
        {"type": 7, "name": "新类型"},
    ]
    assert rows([{"userid": "a", "extattr": {"attrs": attrs}}]) == [
        ("a", "主页", "web", None, "https://x", "X", None),
        ("a", "名片", "miniprogram", None, None, None, "卡"),
        ("a", "工号", "text", "E1", None, None, None),
        ("a", "新类型", "7", None, None, None, None),
        ("a", "旧格式", "text", "flat", None, None, None),
    ]


def test_absent_gives_no_rows_and_empty_gives_a_cleared_row() -> None:
    records = [
        {"userid": "withheld"},
        {"userid": "malformed", "extattr": "not an object"},
        {"userid": "none", "extattr": {"attrs": []}},
        {"userid": "cleared", "extattr": {"attrs": [{"type": 0, "name": "爱好", "text": {"value": ""}}]}},
        {"userid": "nameless", "extattr": {"attrs": [{"type": 0, "text": {"value": "x"}}]}},
    ]
    assert rows(records) == [("cleared", "爱好", "text", None, None, None, None)]


def test_records_of_one_member_merge_first_named_wins() -> None:
    first = {"userid": "a", "extattr": {"attrs": [{"type": 0, "name": "工号", "text": {"value": "E1"}}]}}
    second = {"userid": "a", "extattr": {"attrs": [{"type": 0, "name": "工号", "text": {"value": "E2"}}]}}
    assert rows([first, {"userid": "a"}, second]) == [("a", "工号", "text", "E1", None, None, None)]


def test_the_row_hash_follows_the_value() -> None:
    frame = transform_attributes(
        pd.DataFrame(
            [
                {"userid": "a", "extattr": {"attrs": [{"type": 0, "name": "工号", "text": {"value": "E1"}}]}},
                {"userid": "b", "extattr": {"attrs": [{"type": 0, "name": "工号", "text": {"value": "E1"}}]}},
                {"userid": "c", "extattr": {"attrs": [{"type": 0, "name": "工号", "text": {"value": "E2"}}]}},
            ]
        ),
        CORP,
    )
    hashes = frame.set_index("userid")["row_hash"]
    assert len(set(hashes)) == 3, "userid and value are both hashed"
