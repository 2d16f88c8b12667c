"""The plugin as the Airflow API server serves it: status page behind Airflow's login, nav entry, receiver mount."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.airflow_api import AirflowApi, airflow_api
from tests.support.receiver import BODY_CASES, WRITES, check_body_case, serving
from tests.wecom.callbacks.test_receiver import CRYPTO
from tests.wecom.callbacks.test_receiver_config import wecom_conn_env
from wecom.plugin import STATUS_PREFIX, status_targets
from wecom.store.loader import DirectoryLoader

pytestmark = pytest.mark.airflow
PAGE = f"{STATUS_PREFIX}/"


@pytest.fixture
def target_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty target database, the only one the status page reads."""
    path = tmp_path / "target.db"
    monkeypatch.setenv("AIRFLOW_CONN_STATUS_TARGET", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    monkeypatch.setenv("AIRFLOW__WECOM__STATUS_TARGET_CONN_IDS", "status_target")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080/")
    return f"sqlite:///{path}"


@pytest.fixture
def api(airflow_metadata: Path, target_db: str) -> Iterator[AirflowApi]:
    with airflow_api() as api:
        yield api


def _seed(url: str) -> None:
    """Two full syncs (the second tripped the deletion guard), a pending and a dead callback event."""
    engine = create_engine(url)
    DirectoryLoader(engine).ensure_schema()
    now = datetime.now(UTC)
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    runs = [
        ("scheduled__1", "success", now - timedelta(days=1, minutes=5), now - timedelta(days=1), 40, 1000),
        ("manual__2", "guard_tripped", now - timedelta(hours=2, minutes=3), now - timedelta(hours=2), 41, 300),
    ]
    with engine.begin() as conn:
        for run_id, status, started, finished, departments, users in runs:
            conn.execute(
                text(
                    "INSERT INTO wecom_sync_runs (dag_id, run_id, corp_id, kind, observed_at, started_at, "
                    "finished_at, status, strategy, api_calls, throttled, departments_seen, users_seen, "
                    "users_inserted, message) VALUES ('wecom_directory_sync', :run_id, 'wwcorp', 'full', "
                    ":started, :started, :finished, :status, 'list', 42, 3, :departments, :users, 7, :message)"
                ),
                {
                    "run_id": run_id,
                    "status": status,
                    "started": started.strftime(fmt),
                    "finished": finished.strftime(fmt),
                    "departments": departments,
                    "users": users,
                    "message": "guard: 700 of 1000 members would be deleted" if status == "guard_tripped" else None,
                },
            )
        for key, status, received, error in (
            ("a", "pending", now - timedelta(minutes=7), None),
            ("b", "dead", now - timedelta(hours=1), "user/get answered 60111 five times"),
        ):
            conn.execute(
                text(
                    "INSERT INTO wecom_callback_events (corp_id, dedup_key, received_at, last_received_at, "
                    "create_time, change_type, entity_type, entity_id, payload, status, attempts, last_error) "
                    "VALUES ('wwcorp', :key, :received, :received, :received, 'update_user', 'user', 'u1', '{}', "
                    ":status, 5, :error)"
                ),
                {"key": key, "status": status, "received": received.strftime(fmt), "error": error},
            )
    engine.dispose()


def test_anonymous_request_gets_401_while_the_receiver_stays_public(api: AirflowApi) -> None:
    assert api.client.get(PAGE).status_code == 401
    # The receiver answers itself (404: no such connection), no login involved.
    assert api.client.get("/wecom/callback/nope?msg_signature=a&timestamp=1&nonce=n&echostr=x").status_code == 404


def test_empty_database_says_no_runs_yet(api: AirflowApi) -> None:
    page = api.client.get(PAGE, headers=api.auth)
    assert page.status_code == 200
    assert "no runs yet" in page.text


def test_status_page_shows_runs_guard_events_and_charts(api: AirflowApi, target_db: str) -> None:
    _seed(target_db)
    # A browser carries the login as the _token cookie; the page must accept it like the UI does.
    api.client.cookies.set("_token", api.token)
    page = api.client.get(PAGE)
    api.client.cookies.clear()
    assert page.status_code == 200, page.text
    html = page.text
    assert '<h2>default <span class="corp-id">corp wwcorp</span> <span class="badge bad">FAILING</span></h2>' in html
    assert "<b>1 d 0 h ago</b>" in html  # the last good sync and its age
    assert "<dt>Last full run</dt>" in html and '<span class="bad">guard_tripped</span> 2 h 0 min ago' in html
    assert "TRIPPED" in html and "700 of 1000 members" in html
    assert "delta lag (oldest pending) <b>7 min" in html
    assert "Dead-letter events" in html and "user/get answered 60111 five times" in html
    # Links into the Airflow UI, leaving the iframe.
    assert 'href="/dags/wecom_directory_sync/runs/manual__2" target="_top"' in html
    # Charts: members/departments over merged snapshots with the tripped run marked, one duration bar per run.
    assert html.count('<figure class="chart">') == 3 and html.count("<svg ") == 3
    assert "no data yet" not in html
    assert html.count('<g class="failure">') == 2
    assert html.count('<rect class="bar') == 2
    assert "cdn" not in html.lower() and "<script" not in html


def test_navigation_entry_is_served_by_the_plugins_api(api: AirflowApi) -> None:
    plugins = api.client.get("/api/v2/plugins", headers=api.auth).json()["plugins"]
    wecom = next(p for p in plugins if p["name"] == "wecom")
    (view,) = wecom["external_views"]
    assert (view["name"], view["href"], view["destination"]) == ("WeCom", "wecom/status/", "nav")
    assert [a["url_prefix"] for a in wecom["fastapi_apps"]] == ["/wecom/status", "/wecom"]


def test_a_broken_company_entry_is_reported_beside_the_valid_companies(
    airflow_metadata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    companies = [{"name": "default"}, {"name": "acme", "wecom_conn_id": "wecom_acme", "retries": "3"}]
    monkeypatch.setenv("AIRFLOW_VAR_WECOM_COMPANIES", json.dumps(companies))
    conn = {"conn_type": "wecom", "login": "wwcorp", "password": "s", "extra": {"target_conn_id": "status_db"}}
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_DEFAULT", json.dumps(conn))
    monkeypatch.delenv("AIRFLOW__WECOM__STATUS_TARGET_CONN_IDS", raising=False)
    targets, problems = status_targets()
    assert {conn_id: [c.name for c in listed] for conn_id, listed in targets.items()} == {"status_db": ["default"]}
    assert problems == "wecom_companies[1].retries: expected int (company 'acme')"


@pytest.fixture(scope="module")
def api_server(airflow_metadata: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """Airflow's API server app (core API, UI and every plugin's apps) served by uvicorn over loopback, as
    ``airflow api-server`` serves it, with a ``wecom_default`` connection set up for callbacks."""
    from airflow.api_fastapi.app import create_app, purge_cached_app

    tmp_path = tmp_path_factory.mktemp("api_server")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in wecom_conn_env(tmp_path).items():
            patch.setenv(key, value)
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "api-server-test-jwt-secret")  # the execution API's startup
        purge_cached_app()
        with serving(create_app(), timeout_keep_alive=120, log_config=None) as port:
            yield port, tmp_path
        purge_cached_app()


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize(("size", "content", "status"), BODY_CASES)
def test_the_receiver_route_judges_a_body_by_the_body_limit_its_signature_and_content(
    api_server: tuple[int, Path], size: int, content: str, status: int, write: str
) -> None:
    """The receiver the plugin mounts in the API server: a body up to the connection's
    callback_max_body_bytes (64 KiB) is answered for what it holds, a larger one 413, also when the
    client writes all of it before it reads the answer."""
    port, tmp_path = api_server
    check_body_case(port, tmp_path / "target.db", CRYPTO, (size, content, status), write)
