"""A ``wecom`` connection through Airflow's own REST API, as the UI's connection pages use it.

The API server's app runs in process (``tests.support.airflow_api``) with the
plugin loaded as ``airflow api-server`` loads it; the connection lives in the
metadata database and the Test button reaches a real simulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.airflow_api import AirflowApi, airflow_api
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
TOKEN = "QDG6eKcallbackToken"
ROBOT = "693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa"
ROBOT_URL = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ROBOT}"
SECRET = "right-secret-value"
CONNECTIONS = "/api/v2/connections"


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(members=3, departments=2), corp_id="wwform", secret=SECRET) as sim:
        yield sim


@pytest.fixture
def api(airflow_metadata: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AirflowApi]:
    # The Test button is off unless the deployment enables it (make airflow does).
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    with airflow_api() as api:
        yield api


def create(api: AirflowApi, simulator: RunningSimulator, conn_id: str, secret: str = SECRET) -> dict:
    """A wecom connection as the UI's form saves it: no port, secrets in password and extra."""
    extra = {"callback_token": TOKEN, "callback_aes_secret": KEY, "robot_webhook_url": ROBOT_URL, "strategy": "list"}
    body = {
        "connection_id": conn_id,
        "conn_type": "wecom",
        "host": simulator.base_url,
        "login": "wwform",
        "password": secret,
        "extra": json.dumps(extra),
    }
    answer = api.client.post(CONNECTIONS, json=body, headers=api.auth)
    assert answer.status_code == 201, answer.text
    return answer.json()


def ui_test_body(stored: dict) -> dict:
    """What the 3.3.2 UI's Test button posts for a stored connection: its fields as the API listed them
    (masked), and ``port: Number(null)``, which is 0."""
    return {
        "connection_id": stored["connection_id"],
        "conn_type": stored["conn_type"],
        "description": stored["description"] or "",
        "extra": stored["extra"],
        "host": stored["host"] or "",
        "login": stored["login"] or "",
        "password": stored["password"] or "",
        "port": 0,
        "schema": stored["schema"] or "",
    }


def test_secret_extras_are_masked_in_the_rest_api_and_survive_an_edit(
    api: AirflowApi, simulator: RunningSimulator
) -> None:
    created = create(api, simulator, "wecom_masked")
    listed = next(
        c
        for c in api.client.get(CONNECTIONS, headers=api.auth).json()["connections"]
        if c["connection_id"] == "wecom_masked"
    )
    for shown in (created, listed, api.client.get(f"{CONNECTIONS}/wecom_masked", headers=api.auth).json()):
        text = json.dumps(shown)
        assert KEY not in text and TOKEN not in text and ROBOT not in text and SECRET not in text
        extra = json.loads(shown["extra"])
        # Airflow's own sensitive names ("secret", "token", "webhook_url"): no setting, no plugin involved
        assert extra["callback_aes_secret"] == extra["callback_token"] == extra["robot_webhook_url"] == "***"
        assert extra["strategy"] == "list"  # what is not secret stays readable
    # The UI saves an edit with the masked values it was shown: the stored secrets must stay.
    edit = {**ui_test_body(listed), "port": None, "description": "edited"}
    answer = api.client.patch(f"{CONNECTIONS}/wecom_masked", json=edit, headers=api.auth)
    assert answer.status_code == 200, answer.text
    from airflow.models import Connection

    stored = Connection.get_connection_from_secrets("wecom_masked")
    assert stored.password == SECRET
    assert stored.extra_dejson == {
        "callback_token": TOKEN,
        "callback_aes_secret": KEY,
        "robot_webhook_url": ROBOT_URL,
        "strategy": "list",
    }


def test_the_test_button_reaches_wecom_for_a_stored_connection(api: AirflowApi, simulator: RunningSimulator) -> None:
    listed = create(api, simulator, "wecom_button")
    calls = simulator.calls.get("gettoken", 0)
    answer = api.client.post(f"{CONNECTIONS}/test", json=ui_test_body(listed), headers=api.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": True,
        "message": "Connected to WeCom corp wwform: the secret and IP are accepted.",
    }
    assert simulator.calls["gettoken"] == calls + 1  # the stored secret, not the mask, reached WeCom


def test_the_test_button_names_a_wrong_secret(api: AirflowApi, simulator: RunningSimulator) -> None:
    listed = create(api, simulator, "wecom_wrong", secret="wrong-secret-value")
    answer = api.client.post(f"{CONNECTIONS}/test", json=ui_test_body(listed), headers=api.auth)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] is False
    assert "errcode 40001" in result["message"] and "wrong-secret-value" not in result["message"]
