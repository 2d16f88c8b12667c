"""WeComClient against the project's simulator: a real HTTP server, faults injected per call."""

from __future__ import annotations

import logging
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from wecom.api.budget import MemoryBudgetStore, RateBudget
from wecom.api.budget_sql import SqlBudgetStore
from wecom.api.client import MAX_CURSOR_RESTARTS, RateLimits, WeComClient
from wecom.api.extract import extract_directory
from wecom.api.tokens import TokenCache
from wecom.errors import (
    WeComConfigError,
    WeComError,
    WeComMalformedResponseError,
    WeComNoPrivilegeError,
    WeComNotFoundError,
    WeComPermissionError,
    WeComRateLimitError,
    WeComTransientError,
)
from wecom.store.sql import read_statements
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

CORP_ID = "wwtestcorp"
SECRET = "s3cret-value"
CONN_ID = "wecom_test"
MAX_RETRIES = 3
READ_TIMEOUT_S = 1.0
ORG_OPTIONS = {"seed": 1, "members": 30, "departments": 6}
A_MEMBER = next(member.userid for member in generate_org(**ORG_OPTIONS).users.values())


def start_simulator(**options: Any) -> AbstractContextManager[RunningSimulator]:
    settings: dict[str, Any] = {
        "corp_id": CORP_ID,
        "secret": SECRET,
        "token_ttl": 7200,
        "latency_ms": 0,
        "rate_limit_per_minute": None,
        "rate_limit_window_s": 60.0,
        "regime": "full",
        **options,
    }
    return running_simulator(generate_org(**ORG_OPTIONS), **settings)


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with start_simulator() as running:
        yield running


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_client(base_url: str, **options: Any) -> WeComClient:
    settings: dict[str, Any] = {
        "conn_id": CONN_ID,
        "timeout": 2.0,
        "max_retries": MAX_RETRIES,
        "backoff_base": 0.001,
        "backoff_max": 0.01,
        "rate_limit_wait": 0.01,
        "max_rate_limit_waits": 2,
        **options,
    }
    return WeComClient(base_url, settings.pop("corp_id", CORP_ID), settings.pop("secret", SECRET), **settings)


@pytest.fixture
def client(sim: RunningSimulator) -> Iterator[WeComClient]:
    with make_client(sim.base_url) as made:
        yield made


# --- payloads ---------------------------------------------------------------------------------------


def test_directory_methods_return_validated_payloads(client: WeComClient, sim: RunningSimulator) -> None:
    departments = client.department_list()
    assert {d["id"] for d in departments} == {d["id"] for d in client.department_simplelist()}
    assert 1 in {d["id"] for d in departments}
    assert {d["id"] for d in client.department_list(id=1)} <= {d["id"] for d in departments}
    assert client.department_get(1)["id"] == 1

    members = {u["userid"] for d in departments for u in client.user_list(d["id"])}
    assert members == {m.userid for m in sim.state.org.users.values()}
    userid = sorted(members)[0]
    member = client.user_get(userid)
    assert member["userid"] == userid
    assert "errcode" not in member and "errmsg" not in member

    assert {row["userid"] for row in client.user_list_id()} == members
    assert client.get("department/get", {"id": 1})["department"]["id"] == 1
    assert client.post("user/list_id", {"limit": 5})["errcode"] == 0


def test_tag_methods_return_what_wecom_sent_and_no_more(client: WeComClient, sim: RunningSimulator) -> None:
    tags = client.tag_list()
    assert [t["tagid"] for t in tags] == list(sim.state.org.tags)
    tag = next(t for t in sim.state.org.tags.values() if t.users)
    answer = client.tag_get(tag.id)
    assert set(answer) == {"tagname", "userlist", "partylist"}
    assert [u["userid"] for u in answer["userlist"]] == [m.userid for m in tag.users]
    sim.add_fault("tag/get", body='{"errcode": 0, "errmsg": "ok", "tagname": "x"}')
    assert client.tag_get(tag.id) == {"tagname": "x"}, "lists WeCom left out stay absent, never empty"
    sim.add_fault("tag/get", body='{"errcode": 0, "errmsg": "ok", "partylist": ["2"]}')
    assert client.tag_get(tag.id)["partylist"] == tag.parties, "a malformed answer is retried like a busy one"
    with pytest.raises(ValueError, match="takes a tagid"):
        client.export_start("taguser")


def test_counters_match_what_the_server_received(client: WeComClient, sim: RunningSimulator) -> None:
    sim.add_fault(endpoint="user/list", errcode=-1, times=1)
    client.user_list(1)
    client.department_get(1)
    assert client.api_calls == {"gettoken": 1, "user/list": 2, "department/get": 1}
    assert {endpoint: sim.calls[endpoint] for endpoint in client.api_calls} == client.api_calls
    stats = client.stats()
    stats["api_calls"]["gettoken"] = 99
    assert client.stats() == {
        "api_calls": {"gettoken": 1, "user/list": 2, "department/get": 1},
        "throttled": 0,
    }


def test_endpoint_must_not_carry_a_query_string(client: WeComClient) -> None:
    with pytest.raises(ValueError, match="params"):
        client.get("user/get?userid=x")


def test_list_id_limit_is_checked(client: WeComClient) -> None:
    with pytest.raises(ValueError, match=r"1\.\.10000"):
        client.user_list_id(limit=0)


def test_missing_credentials_fail_before_any_call() -> None:
    with pytest.raises(WeComConfigError, match="wecom_test"):
        WeComClient("http://127.0.0.1:1", CORP_ID, "", conn_id=CONN_ID)


# --- tokens -----------------------------------------------------------------------------------------


def test_token_is_shared_between_clients_handed_the_same_cache(sim: RunningSimulator) -> None:
    tokens = TokenCache()
    with make_client(sim.base_url, tokens=tokens) as first, make_client(sim.base_url, tokens=tokens) as second:
        first.department_get(1)
        second.department_get(1)
    assert sim.calls["gettoken"] == 1
    with make_client(sim.base_url) as own_cache:
        own_cache.department_get(1)
    assert sim.calls["gettoken"] == 2


def test_one_cache_keeps_a_token_per_secret(sim: RunningSimulator) -> None:
    tokens = TokenCache()
    with (
        make_client(sim.base_url, tokens=tokens) as right,
        make_client(sim.base_url, tokens=tokens, secret="wrong-secret") as wrong,
    ):
        right.department_get(1)
        with pytest.raises(WeComConfigError):
            wrong.department_get(1)
        right.department_get(1)
    assert sim.calls["gettoken"] == 2


@pytest.mark.parametrize(("elapsed", "gettoken_calls"), [(7200 - 61, 1), (7200 - 59, 2)])
def test_token_is_renewed_about_a_minute_before_it_expires(
    sim: RunningSimulator, elapsed: int, gettoken_calls: int
) -> None:
    clock = FakeClock()
    with make_client(sim.base_url, tokens=TokenCache(clock)) as client:
        client.department_get(1)
        clock.now += elapsed
        client.department_get(1)
    assert sim.calls["gettoken"] == gettoken_calls
    assert sim.calls["department/get"] == 2


def test_expired_token_is_renewed_and_the_call_retried(client: WeComClient, sim: RunningSimulator) -> None:
    client.department_get(1)
    sim.state.expire_tokens()
    assert client.department_get(1)["id"] == 1
    assert sim.calls["gettoken"] == 2
    assert sim.calls["department/get"] == 3


@pytest.mark.parametrize("errcode", [40014, 42001, 41001])
def test_token_errors_renew_the_token_once(client: WeComClient, sim: RunningSimulator, errcode: int) -> None:
    sim.add_fault(endpoint="department/get", errcode=errcode, times=1)
    assert client.department_get(1)["id"] == 1
    assert (sim.calls["gettoken"], sim.calls["department/get"]) == (2, 2)


@pytest.mark.parametrize("errcode", [40014, 42001, 41001])
def test_token_errors_after_renewal_fail(client: WeComClient, sim: RunningSimulator, errcode: int) -> None:
    sim.add_fault(endpoint="department/get", errcode=errcode, times=2)
    with pytest.raises(WeComError) as caught:
        client.department_get(1)
    assert type(caught.value) is WeComError
    assert (caught.value.errcode, caught.value.endpoint) == (errcode, "department/get")
    assert (sim.calls["gettoken"], sim.calls["department/get"]) == (2, 2)


def test_concurrent_callers_renew_an_expired_token_once(client: WeComClient, sim: RunningSimulator) -> None:
    client.department_get(1)
    sim.state.expire_tokens()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: client.department_get(1)["id"], range(16)))
    assert results == [1] * 16
    assert sim.calls["gettoken"] == 2


def test_check_credentials_always_asks_for_a_fresh_token(client: WeComClient, sim: RunningSimulator) -> None:
    client.check_credentials()
    client.check_credentials()
    assert sim.calls["gettoken"] == 2


# --- errors: fail fast ------------------------------------------------------------------------------


def test_wrong_secret_names_the_connection_and_the_field(sim: RunningSimulator) -> None:
    with (
        make_client(sim.base_url, secret="wrong-secret") as client,
        pytest.raises(WeComConfigError) as caught,
    ):
        client.check_credentials()
    assert str(caught.value) == (
        "connection 'wecom_test': the secret is wrong (errcode 40001); "
        "set the password field to the contact-sync assistant's or the app's secret"
    )
    assert (caught.value.errcode, caught.value.endpoint) == (40001, "gettoken")
    assert sim.calls["gettoken"] == 1


def test_wrong_corp_id_points_at_the_login_field(sim: RunningSimulator) -> None:
    with make_client(sim.base_url, corp_id="wwwrong") as client, pytest.raises(WeComConfigError) as caught:
        client.department_get(1)
    assert caught.value.errcode == 40013
    assert "login field" in str(caught.value)
    assert sim.calls["gettoken"] == 1


FAIL_FAST: list[tuple[str, int, type[WeComError], tuple[str, ...]]] = [
    ("gettoken", 40001, WeComConfigError, ("password field",)),
    ("gettoken", 40013, WeComConfigError, ("corp id", "login field")),
    ("department/get", 60020, WeComConfigError, ("127.0.0.1", "trusted-IP list")),
    ("user/get", 48002, WeComPermissionError, ("user/get", "grant")),
    ("user/get", 48009, WeComPermissionError, ("2022-08-15", "user/list_id")),
    ("user/get", 60111, WeComNotFoundError, ("userid not found",)),
    ("department/get", 60003, WeComNotFoundError, ("department not found",)),
    ("department/get", 60123, WeComNotFoundError, ("invalid department",)),
    ("department/get", 60011, WeComNoPrivilegeError, ("visible scope",)),
    ("tag/get", 40068, WeComNotFoundError, ("invalid tagid", "deleted meanwhile")),
    ("tag/list", 48009, WeComPermissionError, ("2022-08-15",)),
    ("department/get", 50100, WeComError, ("50100",)),
    ("department/get", 40003, WeComError, ("errcode 40003",)),
]


def call_endpoint(client: WeComClient, endpoint: str) -> Any:
    calls: dict[str, Callable[[], Any]] = {
        "gettoken": client.check_credentials,
        "department/list": client.department_list,
        "department/get": lambda: client.department_get(1),
        "user/get": lambda: client.user_get(A_MEMBER),
        "user/list_id": client.user_list_id,
        "tag/list": client.tag_list,
        "tag/get": lambda: client.tag_get(1),
    }
    return calls[endpoint]()


@pytest.mark.parametrize(("endpoint", "errcode", "error", "advice"), FAIL_FAST)
def test_errors_that_retrying_cannot_fix_fail_at_once(
    client: WeComClient,
    sim: RunningSimulator,
    endpoint: str,
    errcode: int,
    error: type[WeComError],
    advice: tuple[str, ...],
) -> None:
    sim.add_fault(endpoint=endpoint, errcode=errcode, times=5)
    with pytest.raises(error) as caught:
        call_endpoint(client, endpoint)
    assert type(caught.value) is error
    assert (caught.value.errcode, caught.value.endpoint) == (errcode, endpoint)
    message = str(caught.value)
    assert message.startswith("connection 'wecom_test': ")
    assert all(part in message for part in advice), message
    assert sim.calls[endpoint] == 1


def test_restricted_contact_sync_ips_keep_the_id_lists(client: WeComClient, sim: RunningSimulator) -> None:
    sim.set_regime("ids_only")
    assert {d["id"] for d in client.department_simplelist()} == set(sim.state.org.departments)
    rows = client.user_list_id()
    assert {row["userid"] for row in rows} == {m.userid for m in sim.state.org.users.values()}
    with pytest.raises(WeComPermissionError) as caught:
        client.user_get(rows[0]["userid"])
    assert caught.value.errcode == 48009  # a contact-sync IP trusted after 2022-08-15
    assert sim.calls["user/get"] == 1


# --- errors: retried --------------------------------------------------------------------------------

TRANSIENT: list[dict[str, Any]] = [
    {"errcode": -1},
    {"errcode": 6000},
    {"errcode": 45033},
    {"http_status": 502},
    {"http_status": 503},
    {"delay_s": 0.6},
]


def fault_id(fault: dict[str, Any]) -> str:
    return ",".join(f"{key}={value}" for key, value in fault.items())


@contextmanager
def timing_out_client(sim: RunningSimulator) -> Iterator[WeComClient]:
    """A client with a short read timeout, against a simulator whose delay faults last until the client gave up.

    The delay is held, not slept: a delayed answer never arrives in time, however loaded the machine.
    The timeout stays far above what an undelayed local call takes.
    """
    with sim.held_pauses(), make_client(sim.base_url, timeout=READ_TIMEOUT_S) as client:
        yield client


@pytest.mark.parametrize("fault", TRANSIENT, ids=fault_id)
def test_transient_failures_are_retried(sim: RunningSimulator, fault: dict[str, Any]) -> None:
    sim.add_fault(endpoint="department/get", times=MAX_RETRIES, **fault)
    with timing_out_client(sim) as client:
        assert client.department_get(1)["id"] == 1
    assert sim.calls["department/get"] == MAX_RETRIES + 1


@pytest.mark.parametrize("fault", TRANSIENT, ids=fault_id)
def test_transient_failures_give_up_after_max_retries(sim: RunningSimulator, fault: dict[str, Any]) -> None:
    sim.add_fault(endpoint="department/get", times=MAX_RETRIES + 1, **fault)
    with timing_out_client(sim) as client, pytest.raises(WeComTransientError) as caught:
        client.department_get(1)
    assert caught.value.endpoint == "department/get"
    assert caught.value.errcode == fault.get("errcode")
    assert f"after {MAX_RETRIES + 1} attempts" in str(caught.value)
    assert sim.calls["department/get"] == MAX_RETRIES + 1


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_server_is_transient() -> None:
    port = unused_port()
    with make_client(f"http://127.0.0.1:{port}") as client, pytest.raises(WeComTransientError) as caught:
        client.department_get(1)
    assert caught.value.endpoint == "gettoken"
    assert client.api_calls == {"gettoken": MAX_RETRIES + 1}


def test_rate_limit_block_is_waited_out(sim: RunningSimulator) -> None:
    sim.add_fault(endpoint="department/get", errcode=45009, times=2)
    slept: list[float] = []
    with make_client(sim.base_url, rate_limit_wait=42.0, max_rate_limit_waits=2, sleep=slept.append) as client:
        assert client.department_get(1)["id"] == 1
        assert client.throttled == 2
    assert slept == [42.0, 42.0]
    assert sim.calls["department/get"] == 3


def test_retries_back_off_exponentially_with_jitter(sim: RunningSimulator) -> None:
    sim.add_fault(endpoint="department/get", errcode=-1, times=MAX_RETRIES)
    slept: list[float] = []
    with make_client(sim.base_url, backoff_base=1.0, backoff_max=3.0, sleep=slept.append) as client:
        client.department_get(1)
    ceilings = [1.0, 2.0, 3.0]
    assert len(slept) == MAX_RETRIES
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(slept, ceilings, strict=True)), slept


def test_rate_limit_gives_up_after_max_waits(client: WeComClient, sim: RunningSimulator) -> None:
    sim.add_fault(endpoint="department/get", errcode=45009, times=5)
    with pytest.raises(WeComRateLimitError) as caught:
        client.department_get(1)
    assert (caught.value.errcode, caught.value.endpoint) == (45009, "department/get")
    assert client.throttled == 3
    assert sim.calls["department/get"] == 3


def test_client_limiter_avoids_the_servers_fixed_window_block() -> None:
    window, per_window, calls = 0.3, 4, 10
    with start_simulator(rate_limit_per_minute=per_window, rate_limit_window_s=window) as sim:
        limits = RateLimits(per_minute=per_window, per_hour=None, ip_per_minute=None, ip_per_hour=None, minute_s=window)
        budget = RateBudget(limits, MemoryBudgetStore(), CORP_ID, min_block=1, margin_s=0.3)
        with make_client(sim.base_url, budget=budget, max_rate_limit_waits=0) as client:
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda _: client.department_get(1), range(calls)))
            assert client.throttled == 0
        assert sim.calls["department/get"] == calls


# --- malformed answers ------------------------------------------------------------------------------

MALFORMED: list[tuple[str, str, str]] = [
    ("department/get", "not json", "not a JSON object"),
    ("department/get", "", "not a JSON object"),
    ("department/get", '{"errcode": 0, "errmsg": "ok", "department": {"id": 1, "na', "not a JSON object"),
    ("department/get", "[1, 2]", "not a JSON object"),
    ("department/get", '{"errcode": "0"}', "errcode that is not a number"),
    ("department/get", '{"errcode": 0, "errmsg": "ok"}', "no department object"),
    ("department/list", '{"errcode": 0, "errmsg": "ok", "department": [{"name": "no id"}]}', "without id"),
    ("user/get", '{"errcode": 0, "errmsg": "ok", "name": "no userid"}', "no userid"),
    ("user/list_id", '{"errcode": 0, "errmsg": "ok", "dept_user": [], "next_cursor": 7}', "next_cursor"),
    ("gettoken", '{"errcode": 0, "errmsg": "ok", "expires_in": 7200}', "no access_token"),
    ("gettoken", '{"errcode": 0, "errmsg": "ok", "access_token": "t", "expires_in": "7200"}', "expires_in"),
]


@pytest.mark.parametrize(("endpoint", "body", "what"), MALFORMED)
def test_malformed_answers_are_retried_like_a_busy_server(
    client: WeComClient, sim: RunningSimulator, endpoint: str, body: str, what: str
) -> None:
    sim.add_fault(endpoint=endpoint, body=body, times=MAX_RETRIES)
    call_endpoint(client, endpoint)
    assert sim.calls[endpoint] == MAX_RETRIES + 1


@pytest.mark.parametrize(("endpoint", "body", "what"), MALFORMED)
def test_malformed_answers_fail_naming_the_endpoint_after_the_retries(
    client: WeComClient, sim: RunningSimulator, endpoint: str, body: str, what: str
) -> None:
    sim.add_fault(endpoint=endpoint, body=body, times=MAX_RETRIES + 1)
    with pytest.raises(WeComMalformedResponseError) as caught:
        call_endpoint(client, endpoint)
    assert caught.value.endpoint == endpoint
    message = str(caught.value)
    assert message.startswith(f"connection 'wecom_test': {endpoint} answered ")
    assert what in message and f"{MAX_RETRIES + 1} times in a row" in message
    assert "access_token" not in message.replace("no access_token", "") and SECRET not in message
    assert sim.calls[endpoint] == MAX_RETRIES + 1


# --- user/list_id paging ----------------------------------------------------------------------------


def pairs(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return sorted((row["userid"], row["department"]) for row in rows)


@pytest.mark.parametrize("last_cursor", ["empty", "missing"])
def test_list_id_follows_the_cursor_to_the_last_page(last_cursor: str) -> None:
    with start_simulator(list_id_last_cursor=last_cursor) as sim, make_client(sim.base_url) as client:
        everything = client.user_list_id()
        assert sim.calls["user/list_id"] == 1
        paged = client.user_list_id(limit=7)
        assert sim.calls["user/list_id"] == 1 + -(-len(everything) // 7)
    assert pairs(paged) == pairs(everything)
    assert len(set(pairs(paged))) == len(paged)


def test_stale_cursor_restarts_paging_from_the_beginning(sim: RunningSimulator) -> None:
    """Cursors die after the first page: its rows are discarded, not duplicated, and paging restarts."""
    with make_client(sim.base_url) as reference:
        expected = pairs(reference.user_list_id(limit=7))
    pages = sim.calls["user/list_id"]
    assert pages > 1
    invalidated = threading.Event()

    def invalidate_cursors_after_first_page(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if "list_id" in response.url and not invalidated.is_set():
            invalidated.set()
            sim.state.invalidate_cursors()

    with requests.Session() as session:
        session.hooks["response"].append(invalidate_cursors_after_first_page)
        with make_client(sim.base_url, session=session) as client:
            assert pairs(client.user_list_id(limit=7)) == expected
    assert sim.calls["user/list_id"] == pages + 2 + pages


def test_stale_cursor_gives_up_after_a_few_restarts(client: WeComClient, sim: RunningSimulator) -> None:
    sim.add_fault(endpoint="user/list_id", errcode=50100, times=10)
    with pytest.raises(WeComError) as caught:
        client.user_list_id()
    assert (caught.value.errcode, caught.value.endpoint) == (50100, "user/list_id")
    assert sim.calls["user/list_id"] == 1 + MAX_CURSOR_RESTARTS


# --- secrets ----------------------------------------------------------------------------------------


def failures_with_secrets_in_flight(sim: RunningSimulator, client: WeComClient) -> list[WeComError]:
    """Provoke every kind of failure whose naive handling would leak the URL, the token or the secret."""
    faults: list[dict[str, Any]] = [
        {"delay_s": 0.6, "times": MAX_RETRIES + 1},
        {"http_status": 502, "times": MAX_RETRIES + 1},
        {"errcode": 42001, "times": 2},
        {"errcode": 60020},
        {"errcode": 40003},
        {"body": "not json", "times": MAX_RETRIES + 1},
    ]
    errors: list[WeComError] = []
    for fault in faults:
        sim.add_fault(endpoint="department/get", **fault)
        with pytest.raises(WeComError) as caught:
            client.department_get(1)
        errors.append(caught.value)
    port = unused_port()
    with make_client(f"http://127.0.0.1:{port}") as unreachable, pytest.raises(WeComError) as caught:
        unreachable.department_get(1)
    errors.append(caught.value)
    return errors


def test_secrets_never_reach_exceptions_logs_or_reprs(
    sim: RunningSimulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    with timing_out_client(sim) as client:
        client.department_get(1)
        token = client._tokens.token.reveal()
        errors = failures_with_secrets_in_flight(sim, client)
        texts = [repr(client), repr(client._tokens), caplog.text]
    for error in errors:
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    for shown in texts:
        assert token not in shown
        assert SECRET not in shown
    assert "access_token=<redacted>" in caplog.text, "urllib3's request lines were not captured"


def test_logs_one_debug_line_per_call_and_warn_on_retries(
    client: WeComClient, sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wecom.api.transport")
    sim.add_fault(endpoint="department/get", errcode=-1, times=1)
    client.department_get(1)
    records = [r for r in caplog.records if r.name == "wecom.api.transport"]
    debug = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(debug) == 3
    assert "gettoken" in debug[0] and "wwtestcorp" in debug[0]
    assert all("department/get" in line and "'id': 1" in line for line in debug[1:])
    assert len(warnings) == 1 and "errcode -1" in warnings[0] and "retry 1/3" in warnings[0]


# --- a whole extract run ----------------------------------------------------------------------------

TRUNCATED_USER_LIST = '{"errcode": 0, "errmsg": "ok", "userlist": [{"userid": "a", "na'


def test_an_extract_run_survives_truncated_answers(sim: RunningSimulator, tmp_path: Path) -> None:
    sim.add_fault(endpoint="user/list", body=TRUNCATED_USER_LIST, times=MAX_RETRIES)
    with make_client(sim.base_url) as client:
        manifest = extract_directory(client, tmp_path, strategy="list", max_workers=2)
    assert manifest["complete"] and manifest["users"] == ORG_OPTIONS["members"]


def test_an_extract_run_fails_naming_the_endpoint_when_answers_stay_truncated(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    sim.add_fault(endpoint="user/list", body=TRUNCATED_USER_LIST, times=None)
    with make_client(sim.base_url) as client:
        with pytest.raises(WeComMalformedResponseError) as caught:
            extract_directory(client, tmp_path, strategy="list", max_workers=2)
        token = client._tokens.token.reveal()
    message = str(caught.value)
    assert message.startswith("connection 'wecom_test': user/list answered something that is not a JSON object")
    assert sim.base_url not in message and SECRET not in message and token not in message


# --- one budget for two processes -------------------------------------------------------------------


def test_two_clients_with_budgets_in_one_database_together_stay_under_the_limit(tmp_path: Path) -> None:
    """A full sync and a callback burst, each with its own budget object on the shared table: no 45009."""
    window, per_window, calls = 0.5, 10, 8
    engine = create_engine(f"sqlite:///{tmp_path / 'target.db'}", connect_args={"timeout": 30})
    with engine.begin() as conn:
        for statement in read_statements("schema/50_rate_budget.sql", "sqlite"):
            conn.execute(text(statement))
    limits = RateLimits(per_minute=per_window, per_hour=None, ip_per_minute=None, ip_per_hour=None, minute_s=window)

    def own_budget() -> RateBudget:
        return RateBudget(limits, SqlBudgetStore(engine), CORP_ID, min_block=2, max_block=4, margin_s=0.5)

    with start_simulator(rate_limit_per_minute=per_window, rate_limit_window_s=window) as sim:
        with (
            make_client(sim.base_url, budget=own_budget(), max_rate_limit_waits=0) as full_sync,
            make_client(sim.base_url, budget=own_budget(), max_rate_limit_waits=0) as callbacks,
            ThreadPoolExecutor(max_workers=4) as pool,
        ):
            jobs = [pool.submit(client.user_get, A_MEMBER) for _ in range(calls) for client in (full_sync, callbacks)]
            assert all(job.result()["userid"] == A_MEMBER for job in jobs)
        assert sim.throttled == 0
        assert sim.calls["user/get"] == 2 * calls
    engine.dispose()
