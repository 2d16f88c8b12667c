"""transform_staged streams members in chunks and still writes exactly the tables ``transform`` builds whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from wecom.client import WeComClient
from wecom.extract import DEPARTMENTS_FILE, USERS_FILE, extract_directory
from wecom.pipeline import TABLE_FIELDS, read_snapshot, transform_staged
from wecom.simulator.org import generate_org
from wecom.simulator.testing import running_simulator
from wecom.staging import read_json_lines
from wecom.transform import TABLE_KEYS, transform


def canonical(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    return frame.sort_values(TABLE_KEYS[table], ignore_index=True)


@pytest.mark.parametrize("strategy", ["list", "ids"])
def test_chunked_transform_equals_the_whole_one(tmp_path: Path, strategy: str) -> None:
    org = generate_org(seed=9, members=250, departments=20)
    with running_simulator(org) as sim, WeComClient(sim.base_url, "wwtestcorp", "s3cret-value") as client:
        extract_directory(client, tmp_path / "raw", strategy=strategy)
    counts = transform_staged(tmp_path / "raw", tmp_path / "normalized", "wwtestcorp", chunk_rows=37)
    whole = transform(
        read_json_lines(tmp_path / "raw" / DEPARTMENTS_FILE),
        read_json_lines(tmp_path / "raw" / USERS_FILE),
        "wwtestcorp",
    )
    chunked = read_snapshot(tmp_path / "normalized")
    for attr, table in TABLE_FIELDS.items():
        expected = getattr(whole, attr)
        assert counts[table] == len(expected)
        pd.testing.assert_frame_equal(canonical(getattr(chunked, attr), table), canonical(expected, table))


def test_no_members_still_writes_every_table(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / DEPARTMENTS_FILE).write_text('{"id": 1, "parentid": 0, "name": "root", "order": 1}\n', encoding="utf-8")
    (raw / USERS_FILE).write_text("", encoding="utf-8")
    counts = transform_staged(raw, tmp_path / "normalized", "wwtestcorp")
    assert counts["wecom_users"] == 0 and counts["wecom_departments"] == 1
    assert list(read_snapshot(tmp_path / "normalized").users.columns) == list(
        transform(read_json_lines(raw / DEPARTMENTS_FILE), pd.DataFrame({"userid": []}), "wwtestcorp").users.columns
    )
