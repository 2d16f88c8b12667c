"""transform_staged streams members in chunks and still writes exactly the tables ``transform`` builds whole;
snapshot_digest tells an unchanged directory from a changed one."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import requests

from wecom.api.client import WeComClient
from wecom.api.extract import DEPARTMENTS_FILE, USERS_FILE, extract_directory
from wecom.api.tag_walk import TAGS_FILE
from wecom.directory.attributes import transform_attributes
from wecom.directory.pii import PiiPolicy
from wecom.directory.tags import transform_tags
from wecom.directory.transform import TABLE_KEYS, Snapshot, transform
from wecom.directory.withheld import WITHHELD, bit
from wecom.errors import DataContractError
from wecom.pipeline import TABLE_FIELDS, snapshot_digest, transform_staged
from wecom.store.staging import read_json_lines, read_table
from wecom_simulator.org import generate_org
from wecom_simulator.testing import running_simulator


def read_snapshot(out_dir: Path) -> Snapshot:
    """Every normalized table a transform wrote, whole."""
    return Snapshot(**{attr: read_table(out_dir / f"{table}.parquet") for attr, table in TABLE_FIELDS.items()})


def canonical(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    return frame.sort_values(TABLE_KEYS[table], ignore_index=True)


@pytest.mark.parametrize("strategy", ["list", "ids"])
def test_chunked_transform_equals_the_whole_one(tmp_path: Path, strategy: str) -> None:
    org = generate_org(seed=9, members=250, departments=20)
    with running_simulator(org) as sim, WeComClient(sim.base_url, "wwtestcorp", "s3cret-value") as client:
        extract_directory(client, tmp_path / "raw", strategy=strategy)
    counts = transform_staged(tmp_path / "raw", tmp_path / "normalized", "wwtestcorp", chunk_rows=37)
    raw_users, raw_tags = read_json_lines(tmp_path / "raw" / USERS_FILE), read_json_lines(tmp_path / "raw" / TAGS_FILE)
    tags = transform_tags(raw_tags, "wwtestcorp")
    whole = replace(
        transform(read_json_lines(tmp_path / "raw" / DEPARTMENTS_FILE), raw_users, "wwtestcorp"),
        tags=tags.tags,
        tag_users=tags.tag_users,
        tag_departments=tags.tag_departments,
        user_attributes=transform_attributes(raw_users, "wwtestcorp"),
    )
    assert len(whole.tags) == len(org.tags)
    assert len(whole.user_attributes) >= (4 * len(org.users) if strategy == "list" else 0), "ids sends no extattr"
    chunked = read_snapshot(tmp_path / "normalized")
    for attr, table in TABLE_FIELDS.items():
        expected = getattr(whole, attr)
        assert counts[table] == len(expected)
        values = getattr(chunked, attr).drop(columns=WITHHELD, errors="ignore")
        pd.testing.assert_frame_equal(canonical(values, table), canonical(expected, table))
    assert not chunked.tags[WITHHELD].any(), "every tag's members were read"
    names_withheld = chunked.departments[WITHHELD] & bit("wecom_departments", "name") != 0
    mobiles_withheld = chunked.users[WITHHELD] & bit("wecom_users", "mobile") != 0
    assert names_withheld.all() == mobiles_withheld.all() == (strategy == "ids")
    assert not names_withheld.any() == (not mobiles_withheld.any()) == (strategy == "list")


def test_no_members_still_writes_every_table(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / DEPARTMENTS_FILE).write_text('{"id": 1, "parentid": 0, "name": "root", "order": 1}\n', encoding="utf-8")
    (raw / USERS_FILE).write_text("", encoding="utf-8")
    counts = transform_staged(raw, tmp_path / "normalized", "wwtestcorp")
    assert counts["wecom_users"] == 0 and counts["wecom_departments"] == 1
    assert list(read_snapshot(tmp_path / "normalized").users.columns) == [
        *transform(read_json_lines(raw / DEPARTMENTS_FILE), pd.DataFrame({"userid": []}), "wwtestcorp").users.columns,
        WITHHELD,
    ]


def test_a_member_without_a_userid_is_named_by_its_line_in_the_staged_file_whatever_its_chunk(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / DEPARTMENTS_FILE).write_text('{"id": 1, "parentid": 0, "name": "root", "order": 1}\n', encoding="utf-8")
    members = [json.dumps({"userid": f"u{n}", "department": [1]}) for n in range(30)]
    members[24] = json.dumps({"name": "无名", "department": [1]})
    (raw / USERS_FILE).write_text("\n".join(members) + "\n", encoding="utf-8")
    with pytest.raises(DataContractError, match=r"1 member record\(s\) do not, staged line\(s\) 25$"):
        transform_staged(raw, tmp_path / "normalized", "wwtestcorp", chunk_rows=10)


def test_snapshot_digest_repeats_for_an_unchanged_directory_only(tmp_path: Path) -> None:
    """Two concurrent ``list`` walks stage members in different orders; the digest must not care."""
    org = generate_org(seed=4, members=300, departments=30)
    with running_simulator(org) as sim, WeComClient(sim.base_url, "wwtestcorp", "s3cret-value") as client:
        first, again = (extract_directory(client, tmp_path / run, strategy="list") for run in ("r1", "r2"))
        userid = sorted(org.users)[7]
        requests.patch(f"{sim.base_url}/_sim/users/{userid}", json={"position": "新职位"}, timeout=5).raise_for_status()
        changed = extract_directory(client, tmp_path / "r3", strategy="list")
    assert snapshot_digest(first) == snapshot_digest(again) is not None
    assert snapshot_digest(changed) != snapshot_digest(first)
    hashed = PiiPolicy.from_option({"mobile": "hash"}, salt="pepper")
    assert snapshot_digest(first, hashed) != snapshot_digest(first)
    assert snapshot_digest(first, hashed) != snapshot_digest(first, PiiPolicy.from_option({"mobile": "hash"}, "salt"))
    assert snapshot_digest(first | {"complete": False}) is None
