"""The tag walk against the simulator: fewest calls, refusals withheld, races recorded, export as the fallback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from wecom.api.client import WeComClient
from wecom.api.extract import concurrent_map
from wecom.api.tag_walk import TagWalk, tag_members, walk_tags
from wecom.store.staging import JsonLinesWriter
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

CORP_ID, SECRET, APP_SECRET = "wwtestcorp", "s3cret-value", "app-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    org = generate_org(seed=5, members=80, departments=16, tags=5)
    with running_simulator(org, corp_id=CORP_ID, secret=SECRET, export_queue_s=0, export_run_s=0) as running:
        running.add_app_secret(APP_SECRET, "new_app")
        yield running


def walk(
    sim: RunningSimulator, tmp_path: Path, secret: str = SECRET, key: str | None = None, workers: int = 4
) -> tuple[TagWalk, list]:
    with (
        WeComClient(sim.base_url, CORP_ID, secret, encoding_aes_key=key, backoff_base=0.001) as client,
        JsonLinesWriter(tmp_path / "tags.jsonl") as writer,
    ):
        mapper = partial(concurrent_map, max_workers=workers)
        result = walk_tags(client, writer, mapper, block_size=10_000, timeout_s=30)
    records = [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text(encoding="utf-8").splitlines()]
    return result, sorted(records, key=lambda r: r["tagid"])


def expected(sim: RunningSimulator, names: bool = True) -> list[dict[str, Any]]:
    org = sim.state.org
    return [
        {
            "tagid": tag.id,
            "tagname": tag.name,
            "userlist": [
                {"userid": m.userid, **({"name": org.profile(m)["name"]} if names else {})} for m in tag.users
            ],
            "partylist": tag.parties,
        }
        for tag in org.tags.values()
    ]


def test_one_list_and_one_get_per_tag(sim: RunningSimulator, tmp_path: Path) -> None:
    result, records = walk(sim, tmp_path)
    assert records == expected(sim)
    assert (result.listed, result.source, result.withheld, result.notes) == (True, "tag/get", 0, [])
    assert sim.calls == {"gettoken": 1, "tag/list": 1, "tag/get": 5}
    assert result.manifest(5)["tags"] == 5


def test_a_refused_tag_list_stages_nothing_and_says_so(sim: RunningSimulator, tmp_path: Path) -> None:
    sim.set_regime("ids_only")
    result, records = walk(sim, tmp_path)
    assert records == [] and (result.listed, result.withheld) == (False, 1)
    assert result.manifest(0)["tags"] is None, "not known, which is not none"
    assert result.notes == ["tag/list answered errcode 48009: the stored tags are kept, none deleted"]
    sim.configure(new_ips_read_tags=True)
    assert walk(sim, tmp_path)[1] == expected(sim)


def test_refused_and_vanished_tags_are_staged_without_members(sim: RunningSimulator, tmp_path: Path) -> None:
    sim.add_fault("tag/get", errcode=60011, match={"tagid": "2"})
    sim.add_fault("tag/get", errcode=40068, match={"tagid": "4"})
    result, records = walk(sim, tmp_path)
    full = expected(sim)
    assert records[1] == {"tagid": 2, "tagname": full[1]["tagname"]}
    assert records[3] == {"tagid": 4, "tagname": full[3]["tagname"]}
    assert [records[i] for i in (0, 2, 4)] == [full[i] for i in (0, 2, 4)]
    assert result.withheld == 1
    assert result.notes == [
        "members of 1 tags withheld (errcode 60011): their stored members kept",
        "tag 4 was deleted during the walk (errcode 40068): its stored members kept",
    ]


def test_an_app_without_names_or_tag_get_falls_back_to_export(sim: RunningSimulator, tmp_path: Path) -> None:
    assert walk(sim, tmp_path, secret=APP_SECRET)[1] == expected(sim, names=False), "names absent, not empty"
    sim.configure(app_forbidden_apis=frozenset({"tag/get"}))
    sim.state.reset_stats()
    result, records = walk(sim, tmp_path, secret=APP_SECRET, key=AES_KEY, workers=1)
    assert records == expected(sim, names=False) and result.source == "export/taguser"
    assert sim.calls["tag/get"] == 1, "once refused, tag/get is not asked again"
    assert sim.calls["export/taguser"] == 5
    result, records = walk(sim, tmp_path, secret=APP_SECRET)
    assert result.withheld == 5 and all(set(r) == {"tagid", "tagname"} for r in records), "no key: withheld"


def test_export_entries_become_tag_get_lists(caplog: pytest.LogCaptureFixture) -> None:
    entries = [{"userid": "a", "type": 1}, {"department": 3, "type": 2}, {"partyid": 4}, {"type": 9}]
    assert tag_members(entries) == {"userlist": [{"userid": "a"}], "partylist": [3, 4]}
    assert "1 entries named neither" in caplog.text
