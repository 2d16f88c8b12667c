"""``python -m wecom.simulator`` as a benchmark starts it: a subprocess that prints its URL first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.wecom.simulator.helpers import Api
from tests.wecom.simulator.test_api import assert_error
from wecom.simulator.__main__ import build_parser, parse_settings
from wecom.simulator.config import SimulatorConfig

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
NOT_CONFIG = {"host", "port", "members", "departments", "seed", "max_depth"}


def test_flags_map_onto_settings() -> None:
    settings = parse_settings(
        ["--port", "0", "--out-of-scope-departments", "7,9", "--regime", "withheld", "--callback-form", "ids_only",
         "--rate-limit-per-minute", "5", "--list-id-last-cursor", "missing"]
    )  # fmt: skip
    assert settings["out_of_scope_departments"] == {7, 9}
    assert (settings["regime"], settings["callback_form"]) == ("withheld", "ids_only")
    assert (settings["rate_limit_per_minute"], settings["list_id_last_cursor"], settings["secret"]) == (
        5, "missing", "s3cret-value",
    )  # fmt: skip
    assert not {"secret_kind", "new_ips", "app_secrets", "app_forbidden_apis"} & set(settings), "left to --regime"


def test_rights_flags_build_the_credentials_and_ips() -> None:
    settings = parse_settings(
        ["--app-secret", "app-one", "--app-secret", "app-two=old_app", "--new-ip", "127.0.0.2", "--new-ip", "10.0.0.9",
         "--app-forbidden-apis", "user/list_id,export/user", "--secret-kind", "old_app"]
    )  # fmt: skip
    assert settings["app_secrets"] == {"app-one": "new_app", "app-two": "old_app"}
    assert settings["new_ips"] == ["127.0.0.2", "10.0.0.9"] and settings["secret_kind"] == "old_app"
    config = SimulatorConfig.create(**{k: v for k, v in settings.items() if k not in NOT_CONFIG})
    assert config.app_forbidden_apis == {"user/list_id", "export/user"} and config.regime == "custom"


def test_help_explains_each_regime_in_wecoms_terms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for regime in ("full", "withheld", "ids_only"):
        assert f"{regime} " in text
    for fact in ("created after 2022-06-20", "added to its trusted IPs after 2022-08-15", "48009", "48002",
                 "callback URL set after 2022-08-15", "update_party fires only when the parent changes"):  # fmt: skip
        assert fact in text, fact


def test_subprocess_serves_until_terminated() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "wecom.simulator", "--port", "0", "--members", "40", "--departments", "5",
               "--corp-id", "wwcli", "--secret", "cli-secret", "--regime", "ids_only",
               "--app-secret", "cli-app"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert requests.get(base_url + "/_sim/stats", timeout=5).json()["members"] == 40
        api = Api(base_url, "wwcli", "cli-secret")
        assert_error(api.get("department/list"), 48009)
        assert api.get("department/simplelist")["errcode"] == 0
        app = Api(base_url, "wwcli", "cli-app")
        assert app.get("department/list")["errcode"] == 0, "the new-IP rule is the contact-sync assistant's"
        assert_error(app.post("user/list_id", {"limit": 5}), 48002)
        requests.post(base_url + "/_sim/regime", json={"regime": "full"}, timeout=5).raise_for_status()
        assert api.get("department/list")["errcode"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
