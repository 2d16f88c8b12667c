"""Frequency limits, the concurrency cap, latency and injected faults (permission regimes: test_rights)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.waiting import DEADLINE_S, wait_for
from tests.wecom_simulator.helpers import Api
from tests.wecom_simulator.test_api import assert_error
from wecom_simulator.downloads import FAULT_ENDPOINTS
from wecom_simulator.faults import Fault, parse_fault
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

ORG = generate_org(seed=2, members=40, departments=6)


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(ORG) as running:
        yield running


def test_rate_limit_blocks_until_the_window_ends() -> None:
    with running_simulator(ORG, rate_limit_per_minute=3, rate_limit_window_s=60) as sim:
        clock = sim.freeze_clock()
        api = Api(sim.base_url)
        answers = [api.get("department/simplelist")["errcode"] for _ in range(5)]
        assert answers == [0, 0, 0, 45009, 45009]
        assert api.get("department/list")["errcode"] == 0, "limits are per API"
        assert sim.throttled == 2 and sim.state.stats()["throttled_by_endpoint"] == {"department/simplelist": 2}
        clock.advance(59.9)
        assert_error(api.get("department/simplelist"), 45009)
        clock.advance(0.1)
        assert api.get("department/simplelist")["errcode"] == 0


def test_hourly_limit_applies_on_top() -> None:
    with running_simulator(ORG, rate_limit_per_hour=2, rate_limit_hour_window_s=3600) as sim:
        clock = sim.freeze_clock()
        api = Api(sim.base_url)
        assert [api.get("user/get", userid="x")["errcode"] for _ in range(3)] == [60111, 60111, 45009]
        clock.advance(3600)
        assert api.get("user/get", userid="x")["errcode"] == 60111


def test_latency_is_concurrent_not_serial() -> None:
    """Eight calls wait out their latency at the same time: the server does not serve them one by one."""
    with running_simulator(ORG, latency_ms=300) as sim, sim.held_pauses() as latency:
        with ThreadPoolExecutor(8) as pool:
            answers = [pool.submit(lambda: Api(sim.base_url).gettoken()["errcode"]) for _ in range(8)]
            wait_for(lambda: sim.in_flight == 8, DEADLINE_S, "eight calls waiting out their latency at once")
            latency.open()
            assert [answer.result() for answer in answers] == [0] * 8
        assert latency.asked == [0.3] * 8


def test_concurrency_cap_answers_45033() -> None:
    with running_simulator(ORG, latency_ms=300, max_concurrency=2) as sim, sim.held_pauses() as latency:
        with ThreadPoolExecutor(2) as pool:
            admitted = [pool.submit(lambda: Api(sim.base_url).gettoken()["errcode"]) for _ in range(2)]
            wait_for(lambda: sim.in_flight == 2, DEADLINE_S, "two calls in flight")
            assert [Api(sim.base_url).gettoken()["errcode"] for _ in range(3)] == [45033] * 3
            latency.open()
            assert [answer.result() for answer in admitted] == [0, 0]
        assert sim.in_flight == 0


def test_errcode_fault_for_the_next_calls_then_normal(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    api.token()
    sim.add_fault(endpoint="user/list", errcode=45033, times=2)
    for _ in range(2):
        answer = api.get("user/list", department_id=1)
        assert_error(answer, 45033)
        assert answer["userlist"] == []
    assert api.get("user/list", department_id=1)["errcode"] == 0
    assert sim.calls["user/list"] == 3


def test_faults_match_parameters_and_can_last_forever(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    other = next(d for d in ORG.departments if d != 1)
    sim.add_fault("user/list", errcode=60011, match={"department_id": "1"}, times=None)
    for _ in range(3):
        assert_error(api.get("user/list", department_id=1), 60011)
    assert api.get("user/list", department_id=other)["errcode"] == 0
    sim.add_fault("user/list_id", errcode=-1, match={"limit": 7})
    assert api.post("user/list_id", {"limit": 8})["errcode"] == 0
    assert_error(api.post("user/list_id", {"limit": 7}), -1)


def test_http_status_raw_body_and_delay_faults(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    api.token()
    sim.add_fault("department/get", http_status=502)
    response = api.raw("department/get", id=1)
    assert response.status_code == 502 and "502" in response.text
    sim.add_fault("department/get", body="not json")
    response = api.raw("department/get", id=1)
    assert (response.status_code, response.text) == (200, "not json")
    sim.add_fault("department/get", errcode=-1, http_status=503)
    response = api.raw("department/get", id=1)
    assert response.status_code == 503 and response.json()["errcode"] == -1
    sim.add_fault("department/get", delay_s=0.4)
    with sim.held_pauses() as delay, ThreadPoolExecutor(1) as pool:
        answer = pool.submit(api.get, "department/get", id=1)
        wait_for(lambda: delay.asked, DEADLINE_S, "the call waiting out its delay")
        assert not answer.done(), "answered before its delay was over"
        delay.open()
        assert answer.result()["errcode"] == 0
    assert delay.asked == [0.4]


def test_token_expiry_fault_mid_run(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    sim.add_fault("user/get", errcode=42001)
    assert_error(api.get("user/get", userid=ORG.member_list()[0].userid), 42001)
    assert api.get("user/get", userid=ORG.member_list()[0].userid)["errcode"] == 0


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="needs"):
        Fault("user/get")
    with pytest.raises(ValueError, match="times"):
        Fault("user/get", errcode=-1, times=0)


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="regime"), running_simulator(ORG, regime="admin"):
        pass
    with pytest.raises(TypeError), running_simulator(ORG, no_such_setting=1):
        pass


# -- the one-line fault syntax of --fault and POST /_sim/faults {"spec": ...} -----------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("user/get:errcode=48009:times=3", Fault("user/get", errcode=48009, times=3)),
        ("department/list:http_status=502:times=forever", Fault("department/list", http_status=502, times=None)),
        ("user/get:delay_s=1.5", Fault("user/get", delay_s=1.5)),
        ("export_file:truncated", Fault("export_file", truncated=True)),
        (
            "user/list:match=department_id=7:match=fetch_child=1:errcode=-1",
            Fault("user/list", errcode=-1, match={"department_id": "7", "fetch_child": "1"}),
        ),
        ('user/list:times=2:body={"a": "b:c"}', Fault("user/list", body='{"a": "b:c"}', times=2)),
        ("user/get:errcode=0:truncated:http_status=200", Fault("user/get", errcode=0, http_status=200, truncated=True)),
    ],
)
def test_fault_specs_read_as_documented(spec: str, expected: Fault) -> None:
    assert parse_fault(spec, FAULT_ENDPOINTS) == expected


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("user/gett:errcode=1", "unknown endpoint 'user/gett'"),
        ("user/get", "needs an errcode"),
        ("user/get:errcode=abc", "errcode must be a number, got 'abc'"),
        ("user/get:times=0:errcode=1", "times must be a positive"),
        ("user/get:retries=3", "cannot read 'retries=3'"),
        ("user/get:match=7:errcode=1", "cannot read 'match=7'"),
        ("user/get:truncated=yes", "cannot read 'truncated=yes'"),
    ],
)
def test_bad_fault_specs_name_what_is_wrong(spec: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        parse_fault(spec, FAULT_ENDPOINTS)


def test_truncated_answers_are_the_real_answer_cut_in_half(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    api.token()
    whole = api.raw("user/list", department_id=1).content
    sim.state.inject(parse_fault("user/list:truncated:match=department_id=1", FAULT_ENDPOINTS))
    response = api.raw("user/list", department_id=1)
    assert response.status_code == 200 and response.content == whole[: len(whole) // 2]
    assert api.raw("user/list", department_id=1).content == whole, "used up"
    sim.add_fault("department/get", errcode=-1)
    sim.add_fault("department/get", errcode=-1, truncated=True)
    error = api.raw("department/get", id=1).content
    cut = api.raw("department/get", id=1).content
    assert len(cut) == len(error) // 2 and cut[:12] == error[:12] == b'{"errcode":-', "an injected answer is cut too"


def test_fault_specs_over_http(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    admin = sim.base_url + "/_sim/faults"
    created = requests.post(admin, json={"spec": "user/get:errcode=48009:times=2"}, timeout=5)
    assert created.status_code == 201 and created.json()["times"] == 2
    for _ in range(2):
        assert_error(api.get("user/get", userid="x"), 48009)
    assert api.get("user/get", userid="x")["errcode"] == 60111
    for body in (
        {"spec": "user/gett:errcode=1"},
        {"spec": "user/get:errcode=1", "times": 2},
        {"endpoint": "nope", "errcode": 1},
    ):
        refused = requests.post(admin, json=body, timeout=5)
        assert refused.status_code == 400 and refused.json()["detail"], body
