"""``fetch_conn_id``: the optional connection whose secret completes ids-only callbacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wecom.company_context import CompanyContext
from wecom.errors import ConnectionConfigError, SettingsError
from wecom.provider_info import get_provider_info
from wecom.settings import WeComSettings


def settings(**extra: object) -> WeComSettings:
    return WeComSettings.from_fields("wecom_default", host=None, login="wwcorp", password="app-secret", extra=extra)


def test_the_key_is_optional_validated_and_in_the_connection_form() -> None:
    assert settings().fetch_conn_id is None
    assert settings(fetch_conn_id="wecom_contacts").fetch_conn_id == "wecom_contacts"
    with pytest.raises(SettingsError, match="fetch_conn_id"):
        settings(fetch_conn_id="not a connection id")
    (connection_type,) = get_provider_info()["connection-types"]
    assert connection_type["conn-fields"]["fetch_conn_id"]["schema"]["type"] == ["string", "null"]


def connection(corp: str, secret: str, **extra: str) -> str:
    return json.dumps({"conn_type": "wecom", "login": corp, "password": secret, "extra": extra})


def callback_fetch_hook(wecom_conn_id: str):
    return CompanyContext(wecom_conn_id).fetch_hook()


def test_the_callback_client_uses_the_fetch_connection_of_the_same_corp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its rate budget is the company's: counted in the company's target database, whatever the fetch
    connection's own target_conn_id says."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_WECOM_TARGET_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "t.db")})
    )
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_DEFAULT", connection("wwcorp", "app-secret", fetch_conn_id="wecom_contacts"))
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_CONTACTS", connection("wwcorp", "contact-sync-secret"))
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_OTHER", connection("wwother", "other-secret"))
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_PLAIN", connection("wwcorp", "plain-secret"))
    company = CompanyContext("wecom_default")
    assert company.fetch_hook().wecom_conn_id == "wecom_contacts"
    assert company.fetch_hook().rate_budget.store.engine is company.engine
    assert callback_fetch_hook("wecom_plain").wecom_conn_id == "wecom_plain"
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_DEFAULT", connection("wwcorp", "app-secret", fetch_conn_id="wecom_other"))
    with pytest.raises(ConnectionConfigError, match="wecom_other") as failure:
        callback_fetch_hook("wecom_default")
    assert "app-secret" not in str(failure.value) and "other-secret" not in str(failure.value)
