"""A task's company, resolved once (``CompanyContext``). The first task of every DAG (``ensure_schema``)
fails in one line naming the connection, where it points and what to do: at once for what retrying
cannot fix, through the DAG's retries for a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wecom.company_context import CompanyContext
from wecom.errors import ConnectionConfigError, PermanentError, TargetUnavailableError
from wecom.store.loader import DirectoryLoader


@pytest.fixture(autouse=True)
def _metadata(airflow_metadata: Path) -> None:
    """A connection that is not in the environment is looked up in the metadata database."""


def wecom(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    conn = {"conn_type": "wecom", "login": "wwcorp", "password": "the-secret", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_DEFAULT", json.dumps(conn))


def target(monkeypatch: pytest.MonkeyPatch, **conn: object) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_TARGET_DB", json.dumps(conn))


def ensure_target_schema(wecom_conn_id: str) -> DirectoryLoader:
    """What the first task of each DAG does (under ``fails_once``, which ends a permanent error's retries)."""
    with CompanyContext(wecom_conn_id) as company:
        return company.ensure_schema()


def one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message and error.__suppress_context__  # no driver traceback chained to it
    assert "the-secret" not in message and "db-password" not in message
    return message


def test_an_unknown_wecom_connection_fails_at_once() -> None:
    with pytest.raises(ConnectionConfigError) as failure:
        ensure_target_schema("wecom_nowhere")
    assert one_line(failure.value).startswith("connection 'wecom_nowhere' does not exist: add it")


def test_an_unknown_target_connection_names_both_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    wecom(monkeypatch, target_conn_id="wecom_missing_db")
    with pytest.raises(ConnectionConfigError) as failure:
        ensure_target_schema("wecom_default")
    assert one_line(failure.value) == (
        "connection 'wecom_default' names target database connection 'wecom_missing_db', which does not exist: "
        "add it (Admin > Connections) or set target_conn_id in 'wecom_default''s extra"
    )


def test_a_malformed_wecom_connection_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    wecom(monkeypatch, strategy="fastest")
    with pytest.raises(ConnectionConfigError, match="connection 'wecom_default': field strategy"):
        ensure_target_schema("wecom_default")


def test_an_unknown_host_fails_at_once_naming_connection_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    wecom(monkeypatch)
    target(monkeypatch, conn_type="postgres", host="db.invalid", login="u", password="db-password", schema="w")
    with pytest.raises(ConnectionConfigError) as failure:
        ensure_target_schema("wecom_default")
    assert isinstance(failure.value, PermanentError)  # fails_once: Airflow does not retry it
    assert one_line(failure.value) == (
        "target database 'wecom_target_db' of connection 'wecom_default' (postgresql db.invalid:5432/w): "
        "unknown host name: fix the host in connection 'wecom_target_db'"
    )


def test_a_refused_connection_is_retried_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    wecom(monkeypatch)
    target(monkeypatch, conn_type="postgres", host="127.0.0.1", port=9, login="u", password="db-password", schema="w")
    with pytest.raises(TargetUnavailableError) as failure:
        ensure_target_schema("wecom_default")
    assert not isinstance(failure.value, PermanentError)
    assert one_line(failure.value).startswith(
        "target database 'wecom_target_db' of connection 'wecom_default' (postgresql 127.0.0.1:9/w): "
        "connection refused: start the database server or fix host and port in connection 'wecom_target_db'; "
        "the task is retried"
    )


def test_a_target_its_tables_cannot_be_named_by_fails_before_any_table_is_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wecom(monkeypatch)
    target(monkeypatch, conn_type="sqlite", host="relative/target.db")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConnectionConfigError) as failure:
        ensure_target_schema("wecom_default")
    assert one_line(failure.value) == (
        "target database of 'wecom_default': sqlite connection 'wecom_target_db': the database file "
        "'relative/target.db' is a relative path, which each Airflow process would resolve from its own working "
        "folder: give the absolute path in host"
    )
    assert not (tmp_path / "relative").exists()


def test_a_reachable_database_gets_its_tables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wecom(monkeypatch)
    target(monkeypatch, conn_type="sqlite", host=str(tmp_path / "target.db"))
    loader = ensure_target_schema("wecom_default")
    with loader.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM wecom_sync_runs").scalar() == 0


def test_one_context_reads_the_connection_once_and_opens_one_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Whatever a task asks of its company (settings, loader, hook, staging, the schema), it resolves once."""
    import wecom.company_context as module
    from wecom.settings import WeComSettings

    wecom(monkeypatch)
    target(monkeypatch, conn_type="sqlite", host=str(tmp_path / "target.db"))
    monkeypatch.setenv("AIRFLOW__WECOM__STAGING_URI", f"file://{tmp_path}/staging")
    parsed, opened = [], []
    parse, open_engine = WeComSettings.from_fields, module.engine_from_airflow_connection
    monkeypatch.setattr(WeComSettings, "from_fields", lambda *a, **k: parsed.append(1) or parse(*a, **k))
    monkeypatch.setattr(module, "engine_from_airflow_connection", lambda c: opened.append(c) or open_engine(c))
    with CompanyContext("wecom_default") as company:
        company.ensure_schema()
        assert company.loader.engine is company.engine is company.hook.rate_budget.store.engine
        assert company.fetch_hook() is company.hook
        assert str(company.run_folder("wecom_directory_sync", "manual__2026-01-01T00:00:00+00:00")).endswith(
            "/staging/wwcorp/wecom_directory_sync/manual__2026-01-01T00_00_00_00_00"
        )
        assert company.failed_runs.folder == company.run_folder("failed-runs", "pending")
    assert (len(parsed), len(opened)) == (1, 1)
