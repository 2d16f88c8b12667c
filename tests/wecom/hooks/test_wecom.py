"""The connection's Test button (``WeComHook.test_connection``): plain words about what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from wecom.api.budget import MemoryBudgetStore
from wecom.hooks.wecom import WeComHook
from wecom.store.sql import read_statements
from wecom_simulator.org import generate_org
from wecom_simulator.testing import running_simulator

KEY = "A" * 43


@pytest.fixture(scope="module")
def simulator():
    with running_simulator(generate_org(members=5, departments=2), corp_id="wwtest", secret="right") as sim:
        yield sim


def _hook(monkeypatch: pytest.MonkeyPatch, base_url: str, secret: str = "right", **extra: object) -> WeComHook:
    conn = {"conn_type": "wecom", "host": base_url, "login": "wwtest", "password": secret, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_BUTTON", json.dumps(conn))
    return WeComHook("wecom_button")


def test_good_connection_says_so(simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = _hook(monkeypatch, simulator.base_url, callback_aes_secret=KEY).test_connection()
    assert ok, message
    assert "wwtest" in message


def test_a_wrong_secret_names_the_field_to_fix_and_never_the_secret(simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = _hook(monkeypatch, simulator.base_url, secret="wrong-secret-value").test_connection()
    assert not ok
    assert message.startswith("connection 'wecom_button': ")
    assert "errcode 40001" in message and "set the password field" in message
    assert "wrong-secret-value" not in message


def test_a_wrong_corp_id_names_the_login_field(simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "wecom", "host": simulator.base_url, "login": "wwnobody", "password": "right"}
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_BUTTON", json.dumps(conn))
    ok, message = WeComHook("wecom_button").test_connection()
    assert not ok
    assert message.startswith("connection 'wecom_button': ")
    assert "errcode 40013" in message and "set the login field" in message


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"callback_aes_secret": KEY[:42]}, "callback_aes_secret"),
        ({"agent_id": "abc"}, "agent_id"),
        ({"strategy": "fastest"}, "strategy"),
        ({"robot_webhook_url": "https://h/send?key=not a key!"}, "robot_webhook_url"),
    ],
)
def test_malformed_fields_are_named_before_any_call(
    simulator, monkeypatch: pytest.MonkeyPatch, extra: dict, field: str
) -> None:
    calls_before = sum(simulator.calls.values())
    ok, message = _hook(monkeypatch, simulator.base_url, **extra).test_connection()
    assert not ok
    assert f"field {field}" in message
    assert sum(simulator.calls.values()) == calls_before


def test_clients_draw_from_the_budget_in_the_companys_target_database(
    simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    with target.begin() as conn:
        for statement in read_statements("schema/50_rate_budget.sql", "sqlite"):
            conn.execute(text(statement))
    monkeypatch.setenv(
        "AIRFLOW_CONN_COMPANY_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "target.db")})
    )
    for _ in range(2):  # two tasks of the company, each with its own hook
        with _hook(monkeypatch, simulator.base_url, target_conn_id="company_db").get_conn() as client:
            client.department_get(1)
    with target.connect() as conn:
        rows = conn.execute(text("SELECT scope, endpoint, SUM(used) FROM wecom_rate_budget GROUP BY 1, 2")).all()
    target.dispose()
    calls = {(scope, endpoint): used for scope, endpoint, used in rows}
    assert calls == {
        (scope, endpoint): 2 * windows
        for scope in ("corp:wwtest", "ip:shared")
        for endpoint, windows in (("gettoken", 2), ("department/get", 2))
    }, "each call counted once per window (minute and hour), unused blocks given back on close"


def test_without_a_target_connection_the_budget_stays_in_the_process(
    simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(monkeypatch, simulator.base_url, target_conn_id="no_such_db")
    assert isinstance(hook.rate_budget.store, MemoryBudgetStore)
    assert hook.test_connection()[0]


def test_the_budget_takes_the_limits_of_the_connection(simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, simulator.base_url, rate_limit_per_minute="500", target_conn_id="no_such_db")
    limits = hook.rate_budget.limits
    assert (limits.per_minute, limits.per_hour, limits.ip_per_minute) == (500, 150_000, 20_000)
    assert hook.rate_budget.corp_id == "wwtest"
