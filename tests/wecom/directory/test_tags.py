"""Raw tag records -> the tag tables: members and departments kept as WeCom sent them, withheld lists marked."""

from __future__ import annotations

import pandas as pd
import pytest

from wecom.directory.tags import Unlisted, mark_tags, transform_tags
from wecom.directory.withheld import WITHHELD, bit

CORP = "wwcorp"
RAW = pd.DataFrame(
    [
        {
            "tagid": 1,
            "tagname": "安全员",
            "userlist": [{"userid": "a", "name": "A"}, {"userid": "b"}],
            "partylist": [2],
        },
        {"tagid": 2, "tagname": "新员工", "userlist": [{"userid": "a"}, {"userid": "a"}], "partylist": []},
        {"tagid": 3, "tagname": "withheld"},
        {"tagid": "4", "tagname": ""},
    ]
)


def test_members_and_departments_become_rows_without_the_names() -> None:
    tables = transform_tags(RAW, CORP)
    assert tables.tags[["tag_id", "tag_name"]].astype(object).where(tables.tags.notna(), None).values.tolist() == [
        [1, "安全员"],
        [2, "新员工"],
        [3, "withheld"],
        [4, None],
    ]
    assert list(zip(tables.tag_users["tag_id"], tables.tag_users["userid"], strict=True)) == [
        (1, "a"),
        (1, "b"),
        (2, "a"),
    ]
    assert tables.tag_departments[["tag_id", "department_id"]].values.tolist() == [[1, 2]]
    assert tables.tags["row_hash"].str.len().eq(16).all()
    assert set(tables.tag_users.columns) == {"corp_id", "tag_id", "userid", "row_hash"}


def test_a_missing_list_is_withheld_an_empty_one_is_not() -> None:
    tables = transform_tags(RAW, CORP)
    marked = mark_tags(RAW, tables.tags).set_index("tag_id")[WITHHELD]
    users, parties = bit("wecom_tags", "tag_users"), bit("wecom_tags", "tag_departments")
    assert marked[1] == marked[2] == 0
    assert marked[3] == users | parties
    assert marked[4] == users | parties
    assert mark_tags(pd.DataFrame(), transform_tags(pd.DataFrame(), CORP).tags).empty


def test_records_without_a_tag_id_fail_the_transform() -> None:
    with pytest.raises(ValueError, match="1 tag record"):
        transform_tags(pd.DataFrame([{"tagname": "x"}]), CORP)


def test_unlisted_members_and_departments_are_counted_not_dropped() -> None:
    unlisted = Unlisted(transform_tags(RAW, CORP))
    unlisted.listed(userids=["a"], department_ids=[1])
    assert unlisted.notes() == [
        "1 tag members are not in the member list (joined during the walk?): kept",
        "tags name departments the department list lacks (2): kept",
    ]
    unlisted.listed(userids=pd.Series(["b"]), department_ids=[2])
    assert unlisted.notes() == []
