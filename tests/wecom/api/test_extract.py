"""Extraction strategies against the real simulator: same directory by every path, fallbacks, export faults."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wecom.api.client as client_module
from wecom.api.client import WeComClient
from wecom.api.crypto import WeComAesCipher
from wecom.api.export_files import iter_json_array
from wecom.api.extract import extract_directory
from wecom.errors import WeComConfigError, WeComExportError, WeComPermissionError
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

CORP_ID = "wwtestcorp"
SECRET = "s3cret-value"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
JOBID = re.compile(r"export job ([0-9a-f]{32})")


@pytest.fixture(scope="module")
def shared() -> Iterator[RunningSimulator]:
    with running_simulator(
        generate_org(seed=5, members=300, departments=25),
        corp_id=CORP_ID,
        secret=SECRET,
        export_queue_s=0,
        export_run_s=0,
    ) as sim:
        yield sim


@pytest.fixture
def sim(shared: RunningSimulator) -> Iterator[RunningSimulator]:
    yield shared
    shared.set_regime("full")
    shared.state.clear_faults()
    shared.state.reset_stats()


def client_for(sim: RunningSimulator, *, key: str | None = AES_KEY, **options: Any) -> WeComClient:
    options = {"backoff_base": 0.001, "backoff_max": 0.01, **options}
    return WeComClient(sim.base_url, CORP_ID, SECRET, encoding_aes_key=key, **options)


def staged(folder: Path, name: str) -> list[dict[str, Any]]:
    with (folder / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def extract(sim: RunningSimulator, folder: Path, strategy: str, **options: Any) -> dict[str, Any]:
    with client_for(sim, key=options.pop("key", AES_KEY)) as client:
        return extract_directory(client, folder, strategy=strategy, max_workers=4, **options)


def by_id(records: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {record[key]: record for record in records}


def test_every_strategy_stages_the_same_directory(sim: RunningSimulator, tmp_path: Path) -> None:
    results = {}
    for strategy in ("export", "list", "detail", "ids"):
        manifest = extract(sim, tmp_path / strategy, strategy)
        assert manifest["strategy"] == strategy and manifest["complete"]
        results[strategy] = (
            by_id(staged(tmp_path / strategy, "departments.jsonl"), "id"),
            by_id(staged(tmp_path / strategy, "users.jsonl"), "userid"),
        )
        assert manifest["users"] == len(results[strategy][1]) == len(sim.state.org.users)
    export_departments, export_users = results["export"]
    for strategy in ("list", "detail"):
        departments, users = results[strategy]
        assert departments == export_departments
        assert users == export_users, f"{strategy} and export disagree on member fields"
    ids_departments, ids_users = results["ids"]
    assert set(ids_departments) == set(export_departments)
    assert {u: sorted(r["department"]) for u, r in ids_users.items()} == {
        u: sorted(r["department"]) for u, r in export_users.items()
    }


def test_export_costs_a_handful_of_calls(sim: RunningSimulator, tmp_path: Path) -> None:
    manifest = extract(sim, tmp_path, "export")
    calls = manifest["api_calls"]
    assert calls["export/department"] == calls["export/user"] == 1
    tag_calls = calls.pop("tag/list") + calls.pop("tag/get")
    assert calls["export_file"] == 2 and sum(calls.values()) <= 10
    assert tag_calls == 1 + len(sim.state.org.tags), "tag/list, then one tag/get per tag"
    assert set(manifest["export_jobs"]) == {"department", "user"}
    assert manifest["throttled"] == 0


def test_multi_file_export_is_downloaded_in_parallel_and_streamed(tmp_path: Path) -> None:
    org = generate_org(seed=6, members=10_500, departments=30)
    with running_simulator(org, corp_id=CORP_ID, secret=SECRET, export_queue_s=0, export_run_s=0) as sim:
        sim.add_fault("export_file", http_status=502)  # one download fails once and is retried
        manifest = extract(sim, tmp_path, "export", export_block_size=10_000)
        assert manifest["users"] == 10_500 and manifest["departments"] == 30
        assert sim.calls["export_file"] == 1 + 2 + 1, "two user files, one department file, one retry"
        assert len(by_id(staged(tmp_path, "users.jsonl"), "userid")) == 10_500


def test_auto_picks_export_when_a_key_is_configured(sim: RunningSimulator, tmp_path: Path) -> None:
    manifest = extract(sim, tmp_path, "auto")
    assert (manifest["strategy"], manifest["strategy_reason"]) == ("export", "export is the cheapest allowed")


def test_auto_without_a_key_uses_list_and_says_why(sim: RunningSimulator, tmp_path: Path) -> None:
    manifest = extract(sim, tmp_path, "auto", key=None)
    assert manifest["strategy"] == "list"
    assert manifest["strategy_reason"] == (
        "export skipped: no callback_aes_secret (the EncodingAESKey) in the connection extra; using list"
    )
    assert not any(endpoint.startswith("export") for endpoint in sim.calls)


def test_auto_falls_back_to_what_a_restricted_ip_may_call(
    sim: RunningSimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim.set_regime("ids_only")
    with caplog.at_level(logging.WARNING, logger="wecom.api.extract"):
        manifest = extract(sim, tmp_path, "auto")
    assert manifest["strategy"] == "ids" and manifest["complete"]
    reason = manifest["strategy_reason"]
    for failed in ("export: export/department", "list: department/list", "detail: department/get"):
        assert f"{failed} answered errcode 48009" in reason
    assert reason.endswith("using ids")
    assert [r.getMessage().split(" failed")[0].split(" (")[0] for r in caplog.records] == [
        "strategy export",
        "strategy list",
        "strategy detail",
        "tag/list refused",
        "WeCom withheld these field groups",
    ]
    assert manifest["withheld"] == {
        "department_details": len(sim.state.org.departments),
        "member_contact": len(sim.state.org.users),
        "member_details": len(sim.state.org.users),
        "tags": 1,
    }
    assert (manifest["tags_listed"], manifest["tags"]) == (False, None)


def test_full_rights_withhold_nothing_and_a_new_app_withholds_contacts(sim: RunningSimulator, tmp_path: Path) -> None:
    assert extract(sim, tmp_path / "full", "list")["withheld"] == {}
    sim.set_regime("withheld")
    assert extract(sim, tmp_path / "app", "list")["withheld"] == {"member_contact": len(sim.state.org.users)}


def test_no_sensitive_apps_still_export(sim: RunningSimulator, tmp_path: Path) -> None:
    sim.set_regime("withheld")
    manifest = extract(sim, tmp_path, "auto")
    assert manifest["strategy"] == "export"
    assert not any("mobile" in user for user in staged(tmp_path, "users.jsonl"))


@pytest.mark.parametrize(
    ("strategy", "endpoint"),
    [("export", "export/department"), ("list", "department/list"), ("detail", "department/get")],
)
def test_explicit_strategy_the_credentials_cannot_use_fails_at_once(
    sim: RunningSimulator, tmp_path: Path, strategy: str, endpoint: str
) -> None:
    sim.set_regime("ids_only")
    with pytest.raises(WeComPermissionError) as caught:
        extract(sim, tmp_path, strategy)
    assert (caught.value.errcode, caught.value.endpoint) == (48009, endpoint)
    message = str(caught.value)
    assert f"strategy {strategy!r} cannot be used" in message and "errcode 48009" in message
    assert "app secret with contacts access" in message, "says what to grant"
    assert sim.calls.get("user/list_id", 0) == 0


def test_explicit_export_without_a_key_fails_before_any_call(sim: RunningSimulator, tmp_path: Path) -> None:
    with pytest.raises(WeComConfigError, match="callback_aes_secret"):
        extract(sim, tmp_path, "export", key=None)
    assert sim.calls == {}


def started_jobs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage().split()[-1] for r in caplog.records if r.getMessage().startswith("started export/")]


EXPORT_FAULTS = [
    ("wrong_md5", "does not match its md5"),
    ("truncated", "arrived truncated"),
    ("failed", "ended in status 3"),
]


@pytest.mark.parametrize(("fault", "problem"), EXPORT_FAULTS)
def test_export_fault_fails_naming_the_job(
    sim: RunningSimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, fault: str, problem: str
) -> None:
    sim.add_export_fault(fault)
    with caplog.at_level(logging.INFO, logger="wecom.api.export_files"), pytest.raises(WeComExportError) as caught:
        extract(sim, tmp_path, "export")
    [named] = JOBID.findall(str(caught.value))
    assert named == started_jobs(caplog)[0], "the department job got the fault"
    assert problem in str(caught.value) and "nothing is loaded" in str(caught.value)
    assert not (tmp_path / "manifest.json").exists()


@pytest.mark.parametrize(("fault", "problem"), EXPORT_FAULTS)
def test_export_fault_under_auto_falls_back_to_list(
    sim: RunningSimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, fault: str, problem: str
) -> None:
    sim.add_export_fault(fault)
    with caplog.at_level(logging.INFO):
        manifest = extract(sim, tmp_path, "auto")
    assert manifest["strategy"] == "list" and manifest["complete"]
    assert manifest["strategy_reason"].startswith("export: export job ")
    assert problem in manifest["strategy_reason"] and manifest["strategy_reason"].endswith("; using list")
    assert any("falling back to list" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert manifest["users"] == len(by_id(staged(tmp_path, "users.jsonl"), "userid")) == len(sim.state.org.users)


# --- the stream parser and decryptor ---------------------------------------------------------------------


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1 << 20])
def test_stream_parser_survives_any_split(size: int) -> None:
    document = {"userlist": [{"userid": f"u{i}", "name": "张三" * i, "n": [i, 1.5, None, True]} for i in range(40)]}
    text = json.dumps(document, ensure_ascii=False, indent=1 if size == 3 else None).encode()
    assert list(iter_json_array(pieces(text, size), "userlist")) == document["userlist"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b'{"department": []}', "holds 'department'"),
        (b'{"userlist": [{"userid": "a"}', "ends inside the list"),
        (b'{"userlist": [{"userid": "a"} {"userid": "b"}]}', "expected ','"),
        (b'{"userlist": [1]}', "not an object"),
        (b'{"userlist": [{"userid": }]}', "not valid JSON"),
        (b"[]", "does not start with"),
    ],
)
def test_stream_parser_rejects_malformed_documents(text: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        list(iter_json_array(pieces(text, 4), "userlist"))


@pytest.mark.parametrize("size", [1, 16, 33, 1000])
def test_stream_decryption_equals_whole_decryption(size: int) -> None:
    cipher = WeComAesCipher(AES_KEY)
    plain = json.dumps({"userlist": [{"userid": str(i)} for i in range(200)]}).encode()
    assert b"".join(cipher.decrypt_stream(pieces(cipher.encrypt_bytes(plain), size))) == plain


# --- concurrency under WeCom's limits ------------------------------------------------------------------


def test_45033_narrows_the_concurrency_and_the_walk_still_completes(sim: RunningSimulator, tmp_path: Path) -> None:
    # Each call is held 100 ms, so eight workers overlap past the cap of two however slowly they start.
    # The limit itself climbs back by additive increase once the answers are good again (more so with
    # the tag walk's calls after the member walk), so the narrowing shows in the decreases it made.
    sim.configure(max_concurrency=2, latency_ms=100)
    try:
        # A call answered 45033 retries after a backoff as long as the calls holding the cap (the
        # client's default is 0.5 s and more): client_for's 1-10 ms backoff let one call lose the race
        # four times in a row on a loaded machine. Enough retries that completing is not luck.
        with client_for(sim, max_concurrency=8, backoff_base=0.1, backoff_max=0.4, max_retries=10) as client:
            manifest = extract_directory(client, tmp_path, strategy="list", max_workers=8)
            assert manifest["complete"] and manifest["users"] == len(sim.state.org.users)
            assert client.concurrency.decreases >= 1
    finally:
        sim.configure(max_concurrency=None, latency_ms=0)


def test_detail_walk_at_the_limits_edge_gets_no_45009(tmp_path: Path) -> None:
    window, per_window = 0.5, 60
    org = generate_org(seed=7, members=150, departments=10)
    with running_simulator(
        org, corp_id=CORP_ID, secret=SECRET, rate_limit_per_minute=per_window, rate_limit_window_s=window
    ) as sim:
        limits = client_module.RateLimits(per_minute=per_window, per_hour=None, minute_s=window)
        with client_for(sim, limits=limits, max_rate_limit_waits=0) as client:
            manifest = extract_directory(client, tmp_path, strategy="detail", max_workers=8)
        assert manifest["users"] == 150 and manifest["throttled"] == 0 and sim.throttled == 0
        assert sim.calls["user/get"] == 150
