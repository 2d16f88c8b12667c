"""Reading a callback endpoint from the wecom connection (through WeComSettings) and its target database."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from tests.wecom.api.test_crypto import AES_KEY, CORP_ID, TOKEN
from tests.wecom.callbacks.test_receiver import CONN_ID, MEMBER_EVENT, URL, envelope
from wecom.callbacks.receiver import create_receiver_app
from wecom.callbacks.receiver_config import ReceiverLimits, receiver_engine
from wecom.errors import ReceiverConfigError, UnknownConnectionError
from wecom.receiver import airflow_resolver
from wecom.store.engine import target_url


def wecom_conn_env(tmp_path: Path, **extra: object) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_WECOM_DEFAULT": json.dumps(
            {
                "conn_type": "wecom",
                "login": CORP_ID,
                "password": "corp-secret-value",
                "extra": {"callback_token": TOKEN, "callback_aes_secret": AES_KEY, **extra},
            }
        ),
        "AIRFLOW_CONN_WECOM_TARGET_DB": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "target.db")}),
    }


def test_airflow_resolver_reads_env_connections_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in wecom_conn_env(tmp_path, callback_max_body_bytes=5000).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIRFLOW_CONN_NOT_CALLBACK", json.dumps({"conn_type": "http", "host": "x"}))
    resolve = airflow_resolver(ReceiverLimits())
    config = resolve(CONN_ID)
    assert (config.corp_id, config.max_body_bytes, config.timestamp_window_s) == (CORP_ID, 5000, 300)
    assert config.engine.url.database == str(tmp_path / "target.db")
    assert TOKEN not in repr(config) and AES_KEY not in repr(config) and "corp-secret" not in repr(config)
    for missing in ["nope", "not_callback"]:
        with pytest.raises(UnknownConnectionError):
            resolve(missing)
    body, params = envelope(MEMBER_EVENT)
    with TestClient(create_receiver_app(resolve)) as client:
        assert client.post(URL, params=params, content=body).status_code == 200
        assert client.post("/wecom/callback/not_callback", params=params, content=body).status_code == 404


def test_airflow_resolver_rereads_the_connection_and_keeps_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in wecom_conn_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    resolve = airflow_resolver(ReceiverLimits())
    first = resolve(CONN_ID)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WECOM_DEFAULT",
        json.dumps(
            {
                "conn_type": "wecom",
                "login": CORP_ID,
                "password": "corp-secret-value",
                "extra": {"callback_token": "other", "callback_aes_secret": AES_KEY},
            }
        ),
    )
    second = resolve(CONN_ID)
    assert (first.token, second.token) == (TOKEN, "other")
    assert second.engine is first.engine


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"target_conn_id": "absent_db"}, "absent_db"),
        ({"callback_timestamp_window_s": "soon"}, "callback_timestamp_window_s"),
        ({"callback_aes_secret": AES_KEY[:42]}, "callback_aes_secret"),
        # WeComSettings' bounds and rules, the same as for the hook and the DAGs
        ({"callback_max_body_bytes": 10}, "callback_max_body_bytes must be between 1024"),
        ({"callback_timestamp_window_s": 0}, "callback_timestamp_window_s must be between 1"),
        ({"callback_token": "not a token!"}, "callback_token"),
        ({"callbak_token": TOKEN}, "unknown keys"),
    ],
)
def test_airflow_resolver_configuration_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: dict, match: str
) -> None:
    for key, value in wecom_conn_env(tmp_path, **extra).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=match):
        airflow_resolver(ReceiverLimits())(CONN_ID)


@pytest.mark.parametrize(
    ("conn", "url"),
    [
        (SimpleNamespace(conn_type="sqlite", host="/data/t.db", schema=None), "sqlite:////data/t.db"),
        (SimpleNamespace(conn_type="sqlite", host="", schema="/data/t.db"), "sqlite:////data/t.db"),
        (
            SimpleNamespace(
                conn_type="postgres",
                host="db.example",
                schema="dir",
                login="etl",
                password="p@ss:/word",
                port=6543,
                extra_dejson={"sslmode": "require", "cursor": "realdictcursor"},
            ),
            "postgresql+psycopg2://etl:p%40ss%3A%2Fword@db.example:6543/dir?sslmode=require",
        ),
    ],
)
def test_target_url_from_airflow_connections(conn: SimpleNamespace, url: str) -> None:
    conn.conn_id = "t"
    assert target_url(conn).render_as_string(hide_password=False) == url


def test_target_url_refuses_other_types() -> None:
    for conn in [
        SimpleNamespace(conn_id="t", conn_type="mysql", host="h", schema="s"),
        SimpleNamespace(conn_id="t", conn_type="sqlite", host="", schema=""),
    ]:
        with pytest.raises(ValueError, match="'t'"):
            target_url(conn)


def test_the_receivers_sqlite_engine_uses_wal_and_the_lock_timeout_as_busy_timeout(tmp_path: Path) -> None:
    engine = receiver_engine(f"sqlite:///{tmp_path / 'target.db'}", ReceiverLimits(lock_timeout_s=1.5))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 1500
    engine.dispose()


def test_the_connection_needs_its_secret_like_everywhere_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in wecom_conn_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    conn = json.loads(os.environ["AIRFLOW_CONN_WECOM_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_DEFAULT", json.dumps({**conn, "password": ""}))
    with pytest.raises(ReceiverConfigError, match="password"):
        airflow_resolver(ReceiverLimits())(CONN_ID)
