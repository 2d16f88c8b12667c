"""``wecom.compat``: each workaround does what it says, and the pinned Airflow still needs it.

The second kind of test fails, naming the shim to delete, on the first Airflow that no longer behaves
as the shim assumes: the point at which the workaround becomes dead weight (or wrong).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from tests.support.airflow_api import AirflowApi, airflow_api
from wecom.compat import CONNECTION_TEST_PATH, ConnectionTestPortFix, without_port_zero

UI_TEST = {"connection_id": "c", "conn_type": "wecom", "host": "", "login": "ww", "password": "***", "port": 0}


def test_port_zero_is_dropped_for_a_wecom_connection_only() -> None:
    assert json.loads(without_port_zero(json.dumps(UI_TEST).encode())) == {
        k: v for k, v in UI_TEST.items() if k != "port"
    }
    for unchanged in ({**UI_TEST, "conn_type": "http"}, {**UI_TEST, "port": 443}, [UI_TEST]):
        body = json.dumps(unchanged).encode()
        assert without_port_zero(body) == body
    assert without_port_zero(b"not json") == b"not json"


def test_the_middleware_rewrites_only_the_connection_test_request() -> None:
    app = FastAPI()

    @app.post(CONNECTION_TEST_PATH)
    @app.post("/api/v2/connections")
    async def echo(request: Request) -> dict:
        return {"body": await request.json(), "length": request.headers["content-length"]}

    client = TestClient(ConnectionTestPortFix(app))
    tested = client.post(CONNECTION_TEST_PATH, json=UI_TEST).json()
    assert "port" not in tested["body"] and int(tested["length"]) == len(json.dumps(tested["body"]))
    assert client.post("/api/v2/connections", json=UI_TEST).json()["body"]["port"] == 0


@pytest.fixture
def api(airflow_metadata: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AirflowApi]:
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    with airflow_api() as api:
        yield api


def test_the_pinned_airflow_still_refuses_port_zero_for_a_connection_without_a_port(api: AirflowApi) -> None:
    """apache/airflow#73298: the UI's Test button sends port 0 for a stored connection without a port, with
    the masked password, and Airflow 3.3.2 answers 400 before any hook runs. Shown with a type the shim
    leaves alone; when this fails, Airflow has the fix: delete ConnectionTestPortFix from wecom.compat and
    its entry in WeComPlugin.fastapi_root_middlewares."""
    body = {"connection_id": "plain_http", "conn_type": "http", "host": "example.invalid", "password": "x"}
    assert api.client.post("/api/v2/connections", json=body, headers=api.auth).status_code == 201
    answer = api.client.post(CONNECTION_TEST_PATH, json={**body, "password": "***", "port": 0}, headers=api.auth)
    assert answer.status_code == 400, (
        f"Airflow answered {answer.status_code}: apache/airflow#73298 is fixed in this Airflow, "
        "delete wecom.compat.ConnectionTestPortFix and the plugin's fastapi_root_middlewares entry"
    )
    assert "differs from the stored connection" in answer.text
