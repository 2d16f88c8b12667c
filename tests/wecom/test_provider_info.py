"""Provider registration: the entry point's info is valid, and the connection form is what Airflow's API serves."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from tests.support.airflow_api import airflow_api
from wecom.constants import SECRET_EXTRAS
from wecom.provider_info import PACKAGE_NAME, get_provider_info
from wecom.settings import CHOICES, FLOAT_OPTIONS, INT_OPTIONS, KNOWN_EXTRA

# What no Airflow process may load just because it discovered the provider.
HEAVY = ("pandas", "pyarrow", "numpy", "Crypto", "sqlalchemy", "requests", "airflow")


def test_entry_points_are_installed() -> None:
    providers = {ep.value for ep in entry_points(group="apache_airflow_provider")}
    plugins = {ep.value for ep in entry_points(group="airflow.plugins")}
    assert "wecom.provider_info:get_provider_info" in providers
    assert "wecom.plugin:WeComPlugin" in plugins


def test_provider_info_matches_airflows_schema_and_the_package() -> None:
    info = get_provider_info()
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    assert info["package-name"] == PACKAGE_NAME
    (conn,) = info["connection-types"]
    assert (conn["connection-type"], conn["hook-class-name"]) == ("wecom", "wecom.hooks.wecom.WeComHook")
    # One registration path for the plugin, the airflow.plugins entry point: a provider "plugins" entry is
    # loaded too when [core] lazy_discover_providers is off, and the second registration is an import error.
    assert "plugins" not in info


def test_the_form_offers_what_the_settings_accept() -> None:
    """The literal form repeats the parser's bounds and choices; this is where they must agree."""
    (conn,) = get_provider_info()["connection-types"]
    fields = conn["conn-fields"]
    assert set(fields) == KNOWN_EXTRA
    assert fields["strategy"]["schema"]["enum"] == list(CHOICES)
    for name, (low, high) in (INT_OPTIONS | FLOAT_OPTIONS).items():
        schema = fields[name]["schema"]
        assert (schema["minimum"], schema["maximum"]) == (low, high), name
        assert schema["type"][0] == ("integer" if name in INT_OPTIONS else "number"), name
    secret = {name for name, field in fields.items() if field["schema"].get("format") == "password"}
    # The form hides what is typed in these; the plugin has Airflow mask the stored values by the same names.
    assert secret == {"callback_token", "callback_aes_secret", "robot_webhook_url"} == set(SECRET_EXTRAS)


def test_reading_the_provider_info_imports_nothing_heavy() -> None:
    """Airflow calls get_provider_info in every process that discovers providers (issue 13)."""
    code = (
        "import sys, wecom.provider_info as p; p.get_provider_info(); "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert [module for module in HEAVY if module in loaded] == []


def test_providers_manager_registers_the_hook() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert PACKAGE_NAME in manager.providers
    hook = manager.hooks["wecom"]
    assert hook.hook_class_name == "wecom.hooks.wecom.WeComHook" and hook.connection_testable


@pytest.mark.airflow
def test_connection_form_as_the_api_serves_it(airflow_metadata: Path) -> None:
    with airflow_api() as api:
        answer = api.client.get("/ui/connections/hook_meta", headers=api.auth)
    assert answer.status_code == 200
    wecom = next(h for h in answer.json() if h["connection_type"] == "wecom")
    standard = wecom["standard_fields"]
    assert standard["login"]["title"] == "Corp ID" and standard["password"]["title"] == "Secret"
    assert standard["host"]["title"] == "API base URL"
    assert standard["host"]["placeholder"] == "https://qyapi.weixin.qq.com"
    assert standard["port"]["hidden"] and standard["url_schema"]["hidden"]
    extra = wecom["extra_fields"]
    labels = {name: field["schema"]["title"] for name, field in extra.items()}
    assert labels["agent_id"] == "Agent ID"
    assert labels["callback_token"] == "Callback Token"
    assert labels["callback_aes_secret"] == "EncodingAESKey"
    assert extra["strategy"]["schema"]["enum"] == list(CHOICES)
    assert extra["callback_aes_secret"]["schema"]["format"] == "password"
    assert extra["max_workers"]["schema"]["type"] == ["integer", "null"]
    assert {"rate_limit_per_minute", "rate_limit_per_hour", "timeout", "robot_webhook_url"} <= set(extra)
