"""Raw WeCom payloads become the normalized tables: dedupe, alignment, NULLs, tree, hashes."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from wecom.directory.attributes import transform_attributes
from wecom.directory.tags import transform_tags
from wecom.directory.transform import (
    TABLE_COLUMNS,
    TABLE_DTYPES,
    TABLE_KEYS,
    TRANSFORM_VERSION,
    Snapshot,
    transform,
    transform_departments,
    transform_users,
)
from wecom.errors import DataContractError

CORP = "ww0123456789abcdef"

TREE = [
    {"id": 1, "name": "总部", "name_en": "HQ", "department_leader": ["boss"], "parentid": 0, "order": 100},
    {"id": 2, "name": "研发中心", "name_en": "", "department_leader": ["zhangsan"], "parentid": 1, "order": 90},
    {"id": 3, "name": "销售中心", "department_leader": [], "parentid": 1, "order": 80},
    {"id": 4, "name": "后端组", "parentid": 2, "order": 70},
]

ZHANGSAN = {
    "userid": "zhangsan",
    "name": "张三",
    "department": [2, 4],
    "order": [10, 20],
    "is_leader_in_dept": [1, 0],
    "main_department": 4,
    "position": "工程师",
    "mobile": "13800000000",
    "gender": "1",
    "email": "zhangsan@example.com",
    "biz_mail": "",
    "direct_leader": ["boss"],
    "avatar": "https://wework.qpic.cn/a.png",
    "thumb_avatar": "https://wework.qpic.cn/t.png",
    "telephone": "",
    "alias": "",
    "address": "北京市海淀区",
    "open_userid": "wo123",
    "status": 1,
    "qr_code": "https://open.work.weixin.qq.com/qr",
    "external_position": "",
    "external_profile": {"external_attr": []},
    "extattr": {"attrs": [{"type": 0, "name": "爱好", "text": {"value": "跑步"}}]},
}


def raw_frame(*records: dict[str, Any]) -> pd.DataFrame:
    """Records as the transform task reads them: JSON lines through ``read_json(dtype=False)``."""
    if not records:
        return pd.DataFrame()
    lines = "\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    return pd.read_json(io.StringIO(lines), lines=True, dtype=False)


def rows(frame: pd.DataFrame, *columns: str) -> list[tuple[Any, ...]]:
    """Rows as plain tuples, NA as None, for exact comparisons."""
    selected = frame[list(columns)] if columns else frame
    return [tuple(None if pd.isna(v) else v for v in row) for row in selected.astype(object).to_numpy()]


def test_member_listed_in_each_department_becomes_one_user() -> None:
    users, memberships, direct = transform_users(raw_frame(ZHANGSAN, ZHANGSAN), CORP)
    assert users["userid"].tolist() == ["zhangsan"]
    assert rows(memberships, "userid", "department_id") == [("zhangsan", 2), ("zhangsan", 4)]
    assert rows(direct) == [(CORP, "zhangsan", "boss")]


def test_order_and_leader_flags_align_with_departments_by_position() -> None:
    member = {"userid": "lisi", "department": [3, 1, 2], "order": [30, 10, 20], "is_leader_in_dept": [0, 1, 0]}
    _, memberships, _ = transform_users(raw_frame(member), CORP)
    assert rows(memberships, "department_id", "sort_order", "is_leader") == [
        (1, 10, True),
        (2, 20, False),
        (3, 30, False),
    ]


def test_misaligned_lists_become_null_instead_of_shifting(caplog: pytest.LogCaptureFixture) -> None:
    member = {"userid": "lisi", "department": [3, 1], "order": [30], "is_leader_in_dept": [0, 1, 1]}
    with caplog.at_level(logging.WARNING, logger="wecom.directory.transform"):
        _, memberships, _ = transform_users(raw_frame(member), CORP)
    assert rows(memberships, "department_id", "sort_order", "is_leader") == [(1, None, None), (3, None, None)]
    assert "1 member record(s) have order" in caplog.text
    assert "1 member record(s) have is_leader_in_dept" in caplog.text


def test_an_aligned_record_fills_what_a_misaligned_one_of_the_same_member_could_not() -> None:
    broken = {"userid": "lisi", "department": [1, 2], "order": [5]}
    whole = {"userid": "lisi", "department": [1, 2], "order": [5, 6], "is_leader_in_dept": [0, 1]}
    _, memberships, _ = transform_users(raw_frame(broken, whole), CORP)
    assert rows(memberships, "department_id", "sort_order", "is_leader") == [(1, 5, False), (2, 6, True)]


def test_list_id_rows_merge_into_one_member_with_every_department() -> None:
    raw = raw_frame(
        {"userid": "wangwu", "department": [3]},
        {"userid": "wangwu", "department": [1]},
        {"userid": "wangwu", "name": "王五", "department": [1, 3], "open_userid": "wo9"},
    )
    users, memberships, _ = transform_users(raw, CORP)
    assert rows(users, "userid", "name", "open_userid", "position") == [("wangwu", "王五", "wo9", None)]
    assert rows(memberships, "department_id", "sort_order", "is_leader", "is_main") == [
        (1, None, None, False),
        (3, None, None, False),
    ]


def test_is_main_marks_the_main_department_only() -> None:
    _, memberships, _ = transform_users(raw_frame(ZHANGSAN), CORP)
    assert rows(memberships, "department_id", "is_main") == [(2, False), (4, True)]


def test_user_fields_are_renamed_and_typed() -> None:
    users, _, _ = transform_users(raw_frame(ZHANGSAN), CORP)
    user = users.iloc[0]
    assert (user["corp_id"], user["name"], user["position"], user["address"]) == (
        CORP,
        "张三",
        "工程师",
        "北京市海淀区",
    )
    assert user["avatar_url"] == "https://wework.qpic.cn/a.png"
    assert (user["gender"], user["status"], user["main_department_id"]) == (1, 1, 4)
    assert users.columns.tolist() == TABLE_COLUMNS["wecom_users"]


@pytest.mark.parametrize(("gender", "expected"), [("0", 0), ("1", 1), ("2", 2), ("", None)])
def test_gender_strings_become_nullable_integers(gender: str, expected: int | None) -> None:
    users, _, _ = transform_users(raw_frame({"userid": "u", "gender": gender}), CORP)
    assert users["gender"].dtype == "Int64"
    assert rows(users, "gender") == [(expected,)]


def test_status_is_a_nullable_integer() -> None:
    raw = raw_frame(*({"userid": f"u{status}", "status": status} for status in (1, 2, 4, 5)), {"userid": "u9"})
    users, _, _ = transform_users(raw, CORP)
    assert users["status"].dtype == "Int64"
    assert rows(users, "userid", "status") == [("u1", 1), ("u2", 2), ("u4", 4), ("u5", 5), ("u9", None)]


def test_extattr_is_compact_sorted_json_keeping_chinese_and_null_when_absent() -> None:
    users, _, _ = transform_users(raw_frame(ZHANGSAN, {"userid": "lisi"}), CORP)
    assert rows(users, "userid", "extattr") == [
        ("lisi", None),
        ("zhangsan", '{"attrs":[{"name":"爱好","text":{"value":"跑步"},"type":0}]}'),
    ]


def test_withheld_and_empty_fields_are_null_never_empty_strings() -> None:
    restricted = {"userid": "zhaoliu", "name": "赵六", "department": [1], "position": "", "alias": ""}
    snapshot = transform(raw_frame(*TREE), raw_frame(ZHANGSAN, restricted), CORP)
    users = snapshot.users.set_index("userid")
    for field in ("biz_mail", "telephone", "alias", "external_position"):
        assert pd.isna(users.loc["zhangsan", field])
    for field in ("position", "alias", "mobile", "email", "avatar_url", "gender", "extattr"):
        assert pd.isna(users.loc["zhaoliu", field])
    assert pd.isna(snapshot.departments.set_index("department_id").loc[2, "name_en"])
    for frame in vars(snapshot).values():
        for column in frame.select_dtypes("string"):
            assert not frame[column].eq("").any(), column


def test_ids_only_payloads_give_complete_tables_of_nulls() -> None:
    departments = raw_frame({"id": 1, "parentid": 0, "order": 100}, {"id": 2, "parentid": 1, "order": 5})
    members = raw_frame({"userid": "a", "department": [2]}, {"userid": "b", "department": [1]})
    snapshot = transform(departments, members, CORP)
    assert rows(snapshot.departments, "department_id", "name", "name_en", "path", "depth") == [
        (1, None, None, "/1/", 0),
        (2, None, None, "/1/2/", 1),
    ]
    assert rows(snapshot.users, "userid", "name", "status") == [("a", None, None), ("b", None, None)]
    assert rows(snapshot.user_departments, "userid", "department_id") == [("a", 2), ("b", 1)]
    assert snapshot.department_leaders.empty
    assert snapshot.user_direct_leaders.empty


def test_department_leaders_come_from_the_department_list_else_from_members() -> None:
    departments = [{**TREE[0], "department_leader": ["boss", "", "boss", "deputy"]}, *TREE[1:]]
    members = [
        {**ZHANGSAN, "is_leader_in_dept": [0, 1]},
        {"userid": "sunqi", "department": [3, 4], "is_leader_in_dept": [1, 1]},
    ]
    snapshot = transform(raw_frame(*departments), raw_frame(*members), CORP)
    # 1 and 2 list their leaders, 3 lists none ([]); only 4 withheld its list, so members name its leaders.
    assert rows(snapshot.department_leaders, "department_id", "userid") == [
        (1, "boss"),
        (1, "deputy"),
        (2, "zhangsan"),
        (4, "sunqi"),
        (4, "zhangsan"),
    ]


def test_direct_leaders_are_flattened_without_blanks_or_repeats() -> None:
    member = {"userid": "lisi", "direct_leader": ["zhangsan", "", "boss", "zhangsan"]}
    _, _, direct = transform_users(raw_frame(member, {"userid": "wangwu", "direct_leader": []}), CORP)
    assert rows(direct, "userid", "leader_userid") == [("lisi", "boss"), ("lisi", "zhangsan")]


def test_path_depth_and_closure_of_a_small_tree() -> None:
    orphan = {"id": 9, "name": "失联部门", "parentid": 99, "order": 1}
    departments, _, closure = transform_departments(raw_frame(*TREE, orphan), CORP)
    assert rows(departments, "department_id", "parent_id", "sort_order", "path", "depth") == [
        (1, 0, 100, "/1/", 0),
        (2, 1, 90, "/1/2/", 1),
        (3, 1, 80, "/1/3/", 1),
        (4, 2, 70, "/1/2/4/", 2),
        (9, 99, 1, None, None),
    ]
    assert rows(closure) == [
        (CORP, 1, 1, 0),
        (CORP, 1, 2, 1),
        (CORP, 1, 3, 1),
        (CORP, 1, 4, 2),
        (CORP, 2, 2, 0),
        (CORP, 2, 4, 1),
        (CORP, 3, 3, 0),
        (CORP, 4, 4, 0),
    ]


@pytest.mark.timeout(10)
def test_a_cycle_ends_the_walk_and_leaves_its_departments_without_path() -> None:
    cycle = [{"id": 5, "parentid": 7}, {"id": 6, "parentid": 5}, {"id": 7, "parentid": 6}, {"id": 8, "parentid": 8}]
    departments, _, closure = transform_departments(raw_frame(*TREE, *cycle), CORP)
    placed = departments.set_index("department_id")
    assert placed.loc[[5, 6, 7, 8], "path"].isna().all()
    assert placed.loc[[5, 6, 7, 8], "depth"].isna().all()
    assert not closure["descendant_id"].isin([5, 6, 7, 8]).any()


def test_exact_duplicate_departments_collapse_and_conflicting_ones_stay() -> None:
    renamed = {**TREE[3], "name": "前端组"}
    departments, leaders, closure = transform_departments(raw_frame(*TREE, *TREE, renamed), CORP)
    assert departments["department_id"].tolist() == [1, 2, 3, 4, 4]
    assert sorted(departments["name"].tail(2)) == ["前端组", "后端组"]
    assert rows(leaders, "department_id", "userid") == [(1, "boss"), (2, "zhangsan")]
    assert not closure.duplicated().any()


def test_empty_inputs_give_empty_tables_with_every_column_and_dtype() -> None:
    snapshot = transform(pd.DataFrame(), pd.DataFrame(), CORP)
    tables = {
        "wecom_departments": snapshot.departments,
        "wecom_users": snapshot.users,
        "wecom_user_departments": snapshot.user_departments,
        "wecom_department_leaders": snapshot.department_leaders,
        "wecom_user_direct_leaders": snapshot.user_direct_leaders,
        "wecom_department_closure": snapshot.department_closure,
    }
    for table, frame in tables.items():
        assert frame.empty
        assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == TABLE_DTYPES[table]


def test_records_without_ids_break_a_data_contract_named_in_one_line() -> None:
    with pytest.raises(DataContractError) as failure:
        transform_departments(raw_frame(TREE[0], {"name": "无编号"}, {"id": "x", "parentid": 1}), CORP)
    assert str(failure.value) == (
        "every department record carries a numeric id and parentid: 2 department record(s) do not, staged line(s) 2, 3"
    )
    with pytest.raises(DataContractError) as failure:
        transform_users(raw_frame({"name": "无名"}, ZHANGSAN), CORP)
    assert failure.value.rule == "every member record carries a userid"
    assert failure.value.records == "1 member record(s) do not, staged line(s) 1"
    assert "无名" not in str(failure.value)


def snapshot_of(departments: list[dict[str, Any]], members: list[dict[str, Any]]) -> Snapshot:
    return transform(raw_frame(*departments), raw_frame(*members), CORP)


MEMBERS = [
    ZHANGSAN,
    {"userid": "lisi", "name": "李四", "department": [3], "order": [1], "gender": "2", "status": 4},
    {"userid": "wangwu", "department": [1]},
    ZHANGSAN,
]


def assert_same_snapshot(left: Snapshot, right: Snapshot) -> None:
    for name, frame in vars(left).items():
        pd.testing.assert_frame_equal(frame, getattr(right, name), check_exact=True)


def test_output_does_not_depend_on_record_order() -> None:
    assert_same_snapshot(snapshot_of(TREE, MEMBERS), snapshot_of(TREE[::-1], MEMBERS[::-1]))


def test_users_transform_by_chunks_like_all_at_once() -> None:
    whole = transform_users(raw_frame(*MEMBERS), CORP)
    chunks = [transform_users(raw_frame(*chunk), CORP) for chunk in ([ZHANGSAN, ZHANGSAN], MEMBERS[1:3])]
    tables = ("wecom_users", "wecom_user_departments", "wecom_user_direct_leaders")
    for position, (table, frame) in enumerate(zip(tables, whole, strict=True)):
        joined = pd.concat([chunk[position] for chunk in chunks]).sort_values(TABLE_KEYS[table])
        pd.testing.assert_frame_equal(frame, joined.reset_index(drop=True))


def test_row_hash_is_16_hex_digits_and_the_same_in_a_fresh_process() -> None:
    users, _, _ = transform_users(raw_frame(*MEMBERS), CORP)
    assert users["row_hash"].str.fullmatch(r"[0-9a-f]{16}").all()
    script = (
        "import json, sys, pandas as pd\n"
        "from wecom.directory.transform import transform_users\n"
        "raw = pd.DataFrame(json.loads(sys.stdin.read()))\n"
        f"print(','.join(transform_users(raw, {CORP!r})[0]['row_hash']))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.pathsep.join(sys.path)}
    fresh = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(MEMBERS, ensure_ascii=False),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert fresh.stdout.strip().split(",") == users["row_hash"].tolist()


def test_row_hash_changes_with_content_only() -> None:
    before = snapshot_of(TREE, MEMBERS)
    moved = [*TREE[:3], {**TREE[3], "parentid": 3}]
    promoted = [{**ZHANGSAN, "position": "高级工程师", "order": [10, 21]}, *MEMBERS[1:]]
    after = snapshot_of(moved, promoted)

    def changed(table: str, *key: str) -> list[Any]:
        old = getattr(before, table).set_index(list(key))["row_hash"]
        new = getattr(after, table).set_index(list(key))["row_hash"]
        return old.index[old.ne(new)].tolist()

    assert changed("departments", "department_id") == [4]
    assert changed("users", "userid") == ["zhangsan"]
    assert changed("user_departments", "userid", "department_id") == [("zhangsan", 4)]


# The normalized tables of TREE and ZHANGSAN, hashed, for each TRANSFORM_VERSION. Unchanged re-syncs
# trust that equal raw payloads under equal versions normalize alike, so an output change must come
# with a new version (and its hash here).
OUTPUT_BY_VERSION = {
    1: "bc38579ef60f938cadbcc71ff9b8623f04574e8033b618b83a645c062417ea23",
    2: "2e27e75d8d3690e27ebe76aac3e930e6dc2bedbae8b3aa24452de3074925d313",  # tags and custom fields
}


TAG = {"tagid": 7, "tagname": "安全员", "userlist": [{"userid": "zhangsan", "name": "张三"}], "partylist": [4]}


def test_a_changed_output_comes_with_a_new_transform_version() -> None:
    tags = transform_tags(raw_frame(TAG), CORP)
    snapshot = replace(
        transform(raw_frame(*TREE), raw_frame(ZHANGSAN), CORP),
        tags=tags.tags,
        tag_users=tags.tag_users,
        tag_departments=tags.tag_departments,
        user_attributes=transform_attributes(raw_frame(ZHANGSAN), CORP),
    )
    tables = {name: getattr(snapshot, name).to_csv(index=False) for name in sorted(Snapshot.__dataclass_fields__)}
    digest = hashlib.sha256(json.dumps(tables, ensure_ascii=False).encode()).hexdigest()
    assert OUTPUT_BY_VERSION.get(TRANSFORM_VERSION) == digest, (
        f"the transform's output changed: bump TRANSFORM_VERSION in wecom/directory/transform.py and add "
        f"{{TRANSFORM_VERSION: {digest!r}}} to OUTPUT_BY_VERSION"
    )
