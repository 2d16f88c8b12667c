"""Bulk export jobs: job states, encrypted files equal to the list endpoints, Range downloads, faults."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import DEADLINE_S, wait_for
from tests.wecom_simulator.helpers import AES_KEY, Api, finished_job
from tests.wecom_simulator.test_api import assert_error
from wecom.api.crypto import WeComAesCipher
from wecom_simulator.org import generate_org
from wecom_simulator.profiles import SENSITIVE_FIELDS
from wecom_simulator.testing import RunningSimulator, running_simulator

# Just past WeCom's smallest block (10,000): two user files, the last one partial.
ORG_SIZE = {"members": 10_500, "departments": 60}


@pytest.fixture(scope="module")
def shared() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=8, **ORG_SIZE), export_queue_s=0.05, export_run_s=0.1) as sim:
        yield sim


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=8, members=30, departments=5), export_queue_s=0, export_run_s=0) as sim:
        yield sim


def export(api: Api, kind: str, block_size: int = 10_000) -> tuple[dict[str, Any], list[int]]:
    answer = api.post(f"export/{kind}", {"encoding_aeskey": AES_KEY, "block_size": block_size})
    assert answer["errcode"] == 0 and answer["jobid"], answer
    statuses: list[int] = []

    def finished() -> dict[str, Any] | None:
        result = api.get("export/get_result", jobid=answer["jobid"])
        statuses.append(result["status"])
        return result if result["status"] >= 2 else None

    return wait_for(finished, DEADLINE_S, f"the {kind} export to finish", lambda: statuses[-5:]), statuses


def download(api: Api, entry: dict[str, Any]) -> bytes:
    response = api.session.get(entry["url"], timeout=10)
    assert response.status_code == 200 and response.headers["accept-ranges"] == "bytes"
    return response.content


def decrypt(data: bytes) -> dict[str, Any]:
    return json.loads(WeComAesCipher(AES_KEY).decrypt_bytes(data))


def entries(api: Api, result: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for entry in result["data_list"]:
        data = download(api, entry)
        assert len(data) == entry["size"] and hashlib.md5(data).hexdigest() == entry["md5"]
        found += decrypt(data)[key]
    return found


def test_job_is_waiting_then_running_then_done(sim: RunningSimulator) -> None:
    """Driven by the simulator's clock: a real poll may arrive late enough to see status 2 first."""
    api = Api(sim.base_url)
    api.token()
    sim.configure(export_queue_s=10, export_run_s=10)
    clock = sim.freeze_clock()
    jobid = api.post("export/user", {"encoding_aeskey": AES_KEY})["jobid"]
    assert api.get("export/get_result", jobid=jobid)["status"] == 0
    clock.advance(10)
    assert api.get("export/get_result", jobid=jobid)["status"] == 1
    clock.advance(10)
    assert finished_job(api, jobid)["data_list"], "done once its files are written"


def test_user_export_matches_user_list_in_blocks(shared: RunningSimulator) -> None:
    api = Api(shared.base_url)
    result, statuses = export(api, "user")
    assert statuses[-1] == 2 and statuses == sorted(statuses)
    assert len(result["data_list"]) == 2, "10,500 members in blocks of 10,000"
    exported = entries(api, result, "userlist")
    assert len(exported) == ORG_SIZE["members"]
    dept_id = shared.state.org.member_list()[0].department[0]
    listed = api.get("user/list", department_id=dept_id)["userlist"]
    by_id = {u["userid"]: u for u in exported}
    assert all(by_id[u["userid"]] == u for u in listed)


def test_simple_user_and_department_exports(shared: RunningSimulator) -> None:
    api = Api(shared.base_url)
    result, _ = export(api, "department", block_size=1_000_000)
    assert entries(api, result, "department") == api.get("department/list")["department"]
    result, _ = export(api, "simple_user", block_size=1_000_000)
    [entry] = result["data_list"]
    simple = entries(api, result, "userlist")
    assert len(simple) == ORG_SIZE["members"] and set(simple[0]) == {"userid", "name", "department", "open_userid"}
    assert entry["url"].startswith(shared.base_url)


def test_range_requests(shared: RunningSimulator) -> None:
    api = Api(shared.base_url)
    result, _ = export(api, "department")
    entry = result["data_list"][0]
    whole = download(api, entry)
    size = len(whole)
    for header, expected in [
        ("bytes=0-99", whole[:100]),
        ("bytes=100-", whole[100:]),
        ("bytes=-32", whole[-32:]),
        (f"bytes=10-{size + 50}", whole[10:]),
    ]:
        response = api.session.get(entry["url"], headers={"Range": header}, timeout=10)
        assert response.status_code == 206 and response.content == expected, header
        assert response.headers["content-range"].endswith(f"/{size}")
    assert api.session.get(entry["url"], headers={"Range": f"bytes={size}-"}, timeout=10).status_code == 416
    assert shared.calls["export_file"] >= 6


def test_a_new_apps_user_export_withholds_the_sensitive_fields(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    sim.set_regime("withheld")
    result, _ = export(api, "user")
    exported = entries(api, result, "userlist")
    assert exported and all(not SENSITIVE_FIELDS & set(u) for u in exported)
    assert all({"userid", "name", "department", "position"} <= set(u) for u in exported)


def test_a_job_keeps_the_rights_it_was_started_with(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    answer = api.post("export/user", {"encoding_aeskey": AES_KEY, "block_size": 10_000})
    sim.set_regime("withheld")
    result = finished_job(api, answer["jobid"])
    assert all(set(u) >= SENSITIVE_FIELDS for u in entries(api, result, "userlist"))


def test_a_new_contact_sync_ip_may_start_no_export(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    sim.set_regime("ids_only")
    for kind in ("simple_user", "user", "department"):
        assert_error(api.post(f"export/{kind}", {"encoding_aeskey": AES_KEY}), 48009)


@pytest.mark.parametrize(
    "body",
    [
        {"encoding_aeskey": "short", "block_size": 10_000},
        {"encoding_aeskey": AES_KEY, "block_size": 9_999},
        {"encoding_aeskey": AES_KEY, "block_size": 1_000_001},
        {"block_size": 10_000},
    ],
)
def test_bad_export_requests(sim: RunningSimulator, body: dict[str, Any]) -> None:
    assert_error(Api(sim.base_url).post("export/user", body), 40058)


def test_unknown_job_and_expired_urls(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    assert_error(api.get("export/get_result", jobid="nope"), 40058)
    sim.configure(export_url_ttl_s=60)
    clock = sim.freeze_clock()
    result, _ = export(api, "department")
    clock.advance(60)
    assert api.session.get(result["data_list"][0]["url"], timeout=10).status_code == 404


def test_files_live_until_their_url_expires_or_the_simulator_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    org = generate_org(seed=8, members=30, departments=5)
    with running_simulator(org, export_queue_s=0, export_run_s=0, export_url_ttl_s=60) as sim:
        assert not list(tmp_path.iterdir()), "no export, no directory"
        clock = sim.freeze_clock()
        api = Api(sim.base_url)
        [first] = export(api, "department")[0]["data_list"]
        clock.advance(30)
        [second] = export(api, "user")[0]["data_list"]
        assert len(list(tmp_path.glob("wecom-sim-export-*/*"))) == 2
        clock.advance(31)
        assert api.session.get(first["url"], timeout=10).status_code == 404
        assert len(list(tmp_path.glob("wecom-sim-export-*/*"))) == 1, "the expired URL's file is deleted"
        assert decrypt(download(api, second))["userlist"]
    assert not list(tmp_path.iterdir()), "stopping removes the rest"


def test_export_faults(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    sim.add_export_fault("failed")
    result, _ = export(api, "user")
    assert result["status"] == 3 and "data_list" not in result
    sim.add_export_fault("wrong_md5")
    [entry] = export(api, "user")[0]["data_list"]
    data = download(api, entry)
    assert len(data) == entry["size"] and hashlib.md5(data).hexdigest() != entry["md5"]
    sim.add_export_fault("truncated")
    [entry] = export(api, "user")[0]["data_list"]
    assert len(download(api, entry)) < entry["size"]
    [entry] = export(api, "user")[0]["data_list"]
    assert decrypt(download(api, entry))["userlist"], "faults are used up"
    with pytest.raises(ValueError, match="export fault"):
        sim.add_export_fault("slow")


def test_export_fault_over_http_and_download_faults(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    response = api.session.post(sim.base_url + "/_sim/export_faults", json={"kind": "failed"}, timeout=5)
    assert response.status_code == 201
    assert export(api, "department")[0]["status"] == 3
    [entry] = export(api, "department")[0]["data_list"]
    sim.add_fault("export_file", http_status=502)
    assert api.session.get(entry["url"], timeout=10).status_code == 502
    assert decrypt(download(api, entry))["department"]
