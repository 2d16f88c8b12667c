"""The connection's Test button (``WeComHook.test_connection``): plain words about what is wrong."""

from __future__ import annotations

import json

import pytest

from wecom.hooks.wecom import WeComHook
from wecom.simulator.org import generate_org
from wecom.simulator.testing import running_simulator

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
    ok, message = _hook(monkeypatch, simulator.base_url, encoding_aes_key=KEY).test_connection()
    assert ok, message
    assert "wwtest" in message


def test_wrong_secret_is_explained_without_the_secret(simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = _hook(monkeypatch, simulator.base_url, secret="wrong-secret-value").test_connection()
    assert not ok
    assert "40001" in message or "secret" in message.lower()
    assert "wrong-secret-value" not in message


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"encoding_aes_key": KEY[:42]}, "encoding_aes_key"),
        ({"agent_id": "abc"}, "agent_id"),
        ({"strategy": "fastest"}, "strategy"),
        ({"robot_webhook_key": "not a key!"}, "robot_webhook_key"),
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
