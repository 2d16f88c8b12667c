"""The first task of every DAG (``ensure_target_schema``) fails in one line naming the connection, where it
points and what to do: at once for what retrying cannot fix, through the DAG's retries for a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from wecom.hooks.target import ConfigurationError, TargetUnavailable, ensure_target_schema


@pytest.fixture(autouse=True)
def _metadata(airflow_metadata: Path) -> None:
    """A connection that is not in the environment is looked up in the metadata database."""


def wecom(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    conn = {"conn_type": "wecom", "login": "wwcorp", "password": "the-secret", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_DEFAULT", json.dumps(conn))


def target(monkeypatch: pytest.MonkeyPatch, **conn: object) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_TARGET_DB", json.dumps(conn))


def one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message and error.__suppress_context__  # no driver traceback chained to it
    assert "the-secret" not in message and "db-password" not in message
    return message


def test_an_unknown_wecom_connection_fails_at_once() -> None:
    with pytest.raises(ConfigurationError) as failure:
        ensure_target_schema("wecom_nowhere")
    assert one_line(failure.value).startswith("connection 'wecom_nowhere' does not exist: add it")


def test_an_unknown_target_connection_names_both_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    wecom(monkeypatch, target_conn_id="wecom_missing_db")
    with pytest.raises(ConfigurationError) as failure:
        ensure_target_schema("wecom_default")
    assert one_line(failure.value) == (
        "connection 'wecom_default' names target database connection 'wecom_missing_db', which does not exist: "
        "add it (Admin > Connections) or set target_conn_id in 'wecom_default''s extra"
    )


def test_a_malformed_wecom_connection_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    wecom(monkeypatch, strategy="fastest")
    with pytest.raises(ConfigurationError, match="connection 'wecom_default': field strategy"):
        ensure_target_schema("wecom_default")


def test_an_unknown_host_fails_at_once_naming_connection_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    wecom(monkeypatch)
    target(monkeypatch, conn_type="postgres", host="db.invalid", login="u", password="db-password", schema="w")
    with pytest.raises(ConfigurationError) as failure:
        ensure_target_schema("wecom_default")
    assert isinstance(failure.value, AirflowFailException)  # Airflow does not retry it
    assert one_line(failure.value) == (
        "target database 'wecom_target_db' of connection 'wecom_default' (postgresql db.invalid:5432/w): "
        "unknown host name: fix the host in connection 'wecom_target_db'"
    )


def test_a_refused_connection_is_retried_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    wecom(monkeypatch)
    target(monkeypatch, conn_type="postgres", host="127.0.0.1", port=9, login="u", password="db-password", schema="w")
    with pytest.raises(TargetUnavailable) as failure:
        ensure_target_schema("wecom_default")
    assert not isinstance(failure.value, AirflowFailException)
    assert one_line(failure.value).startswith(
        "target database 'wecom_target_db' of connection 'wecom_default' (postgresql 127.0.0.1:9/w): "
        "connection refused: start the database server or fix host and port in connection 'wecom_target_db'; "
        "the task is retried"
    )


def test_a_reachable_database_gets_its_tables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wecom(monkeypatch)
    target(monkeypatch, conn_type="sqlite", host=str(tmp_path / "target.db"))
    loader = ensure_target_schema("wecom_default")
    with loader.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM wecom_sync_runs").scalar() == 0
