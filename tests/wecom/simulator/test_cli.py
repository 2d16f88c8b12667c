"""``python -m wecom.simulator`` as a benchmark starts it: a subprocess that prints its URL first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.wecom.simulator.helpers import Api
from tests.wecom.simulator.test_api import assert_error
from wecom.simulator.__main__ import build_parser

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def test_flags_map_onto_settings() -> None:
    args = build_parser().parse_args(
        ["--port", "0", "--out-of-scope-departments", "7,9", "--permission-mode", "no_sensitive",
         "--rate-limit-per-minute", "5", "--list-id-last-cursor", "missing"]
    )  # fmt: skip
    assert args.out_of_scope_departments == {7, 9} and args.permission_mode == "no_sensitive"
    assert (args.rate_limit_per_minute, args.list_id_last_cursor, args.secret) == (5, "missing", "s3cret-value")


def test_subprocess_serves_until_terminated() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "wecom.simulator", "--port", "0", "--members", "40", "--departments", "5",
               "--corp-id", "wwcli", "--secret", "cli-secret", "--permission-mode", "restricted"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert requests.get(base_url + "/_sim/stats", timeout=5).json()["members"] == 40
        api = Api(base_url, "wwcli", "cli-secret")
        assert_error(api.get("department/list"), 48009)
        assert api.get("department/simplelist")["errcode"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
