"""Provider registration: the entry point's info is valid, and the connection form is what Airflow's API serves."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from functools import cache, cached_property
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest
from airflow.sdk import BaseHook, BaseNotifier, BaseOperator, BaseSensorOperator
from airflow.triggers.base import BaseTrigger

import wecom
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


@cache
def package_classes() -> tuple[type, ...]:
    """Every class the runtime package defines, each module imported (the plugin and the DAG glue too)."""
    classes = []
    for module_info in pkgutil.walk_packages(wecom.__path__, "wecom."):
        module = importlib.import_module(module_info.name)
        classes += [c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__]
    return tuple(classes)


def resolve(path: str) -> object:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


# What Airflow's provider info lists by module, and the base class that puts a class in each list.
LISTED_BY_MODULE = {
    "hooks": BaseHook,
    "operators": BaseOperator,
    "sensors": BaseSensorOperator,
    "triggers": BaseTrigger,
}


@pytest.mark.parametrize("kind", LISTED_BY_MODULE)
def test_provider_info_lists_every_module_defining_a(kind: str) -> None:
    """As the official providers' integrity test: a hook, operator, sensor or trigger in a module the
    provider info does not list is missing from Airflow's provider listing and docs; a listed module
    without one is stale."""
    info = get_provider_info()
    base = LISTED_BY_MODULE[kind]
    defining = {
        c.__module__
        for c in package_classes()
        if issubclass(c, base) and not (kind == "operators" and issubclass(c, BaseSensorOperator))
    }
    listed = {module for entry in info[kind] for module in entry["python-modules"]}
    assert listed == defining
    integrations = {i["integration-name"] for i in info["integrations"]}
    assert {entry["integration-name"] for entry in info[kind]} <= integrations


def test_provider_info_names_classes_and_functions_that_exist() -> None:
    info = get_provider_info()
    notifiers = {f"{c.__module__}.{c.__qualname__}" for c in package_classes() if issubclass(c, BaseNotifier)}
    assert set(info["notifications"]) == notifiers
    (conn,) = info["connection-types"]
    assert issubclass(resolve(conn["hook-class-name"]), BaseHook)
    for entry in info["asset-uris"]:
        for key in ("handler", "factory", "to_openlineage_converter"):
            if key in entry:
                assert callable(resolve(entry[key])), (key, entry[key])


def test_every_operator_sensor_and_notifier_templates_its_conn_id_and_caches_its_hook() -> None:
    """As the official providers' operators: ``wecom_conn_id`` may be a template (one DAG for several
    companies), and ``hook`` is built once per task, from the rendered id, and shared by what it calls."""
    shaped = [c for c in package_classes() if issubclass(c, BaseOperator | BaseNotifier)]
    assert len(shaped) >= 5  # extract, load, apply, the sensor, the robot notifier
    for cls in shaped:
        assert "wecom_conn_id" in cls.template_fields, cls
        hook = inspect.getattr_static(cls, "hook", None)
        assert isinstance(hook, cached_property) and hook.func.__annotations__["return"] == "WeComHook", cls


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
