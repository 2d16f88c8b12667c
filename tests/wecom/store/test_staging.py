"""Staged JSON lines: the content digest depends on the records, never on their order."""

from __future__ import annotations

import random
from pathlib import Path

from wecom.store.staging import JsonLinesWriter, read_json_lines

RECORDS = [
    {"userid": f"u{i}", "name": f"成员{i}", "department": [1, i % 3 + 2], "extattr": {"attrs": []}} for i in range(50)
]


def digest_of(path: Path, records: list[dict]) -> str:
    with JsonLinesWriter(path) as writer:
        writer.write_many(records)
    return writer.digest


def test_digest_ignores_record_and_key_order(tmp_path: Path) -> None:
    shuffled = random.Random(3).sample(RECORDS, len(RECORDS))
    reversed_keys = [dict(reversed(record.items())) for record in shuffled]
    first = digest_of(tmp_path / "a.jsonl", RECORDS)
    assert digest_of(tmp_path / "b.jsonl", shuffled) == first
    assert digest_of(tmp_path / "c.jsonl", reversed_keys) == first
    assert read_json_lines(tmp_path / "c.jsonl").to_dict("records") == shuffled


def test_digest_sees_any_changed_missing_or_repeated_record(tmp_path: Path) -> None:
    first = digest_of(tmp_path / "a.jsonl", RECORDS)
    renamed = [*RECORDS[:-1], RECORDS[-1] | {"name": "改名"}]
    moved = [*RECORDS[:-1], RECORDS[-1] | {"department": [RECORDS[-1]["department"][1], 1]}]
    variants = [renamed, moved, RECORDS[:-1], [*RECORDS, RECORDS[0]], []]
    digests = {digest_of(tmp_path / f"v{i}.jsonl", records) for i, records in enumerate(variants)}
    assert first not in digests and len(digests) == len(variants)
