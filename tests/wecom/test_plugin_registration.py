"""The plugin is registered exactly once, without import errors, by every Airflow component's plugin loader.

Each case runs in a fresh interpreter, as a component would start: the plugins
folder is this repository's ``plugins/`` (as ``make demo``, ``make airflow`` and
the tests set it) and the package is installed (``pip install -e .``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# each case is a fresh interpreter loading Airflow's plugins
pytestmark = pytest.mark.process

# The API server, scheduler and dag-processor load plugins through airflow.plugins_manager; a task
# (integrate_macros_plugins, before rendering templates) through airflow.sdk.plugins_manager.
LOAD = """
import json, sys
from airflow import plugins_manager
from airflow.sdk import plugins_manager as sdk_plugins_manager
from airflow.sdk.log import mask_secret, redact
core, core_errors = plugins_manager._get_plugins()
sdk, sdk_errors = sdk_plugins_manager._get_plugins()
# What a task does with a connection's extra (Connection.extra_dejson), then prints or renders.
mask_secret({"callback_aes_secret": "k" * 43, "robot_webhook_url": "https://h/?key=robot-key-1", "strategy": "list"})
print(json.dumps({
    "core": [p.name for p in core], "core_errors": core_errors,
    "sdk": [p.name for p in sdk], "sdk_errors": sdk_errors,
    "modules": sorted(m for m in sys.modules if m in ("plugin", "client", "wecom_plugin")),
    "rendered": redact("aes " + "k" * 43 + " robot https://h/?key=robot-key-1 strategy list"),
}))
"""


@pytest.mark.parametrize("lazy_providers", ["True", "False"])
def test_every_loader_registers_the_plugin_once_without_errors(lazy_providers: str) -> None:
    # lazy_discover_providers=False also loads the plugins that providers declare: a second path to
    # a duplicate registration ("Plugin 'wecom' already registered"), reported as an import error.
    env = os.environ | {"AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS": lazy_providers}
    answer = subprocess.run([sys.executable, "-c", LOAD], env=env, check=True, capture_output=True, text=True)
    loaded = json.loads(answer.stdout.splitlines()[-1])
    assert loaded["core"].count("wecom") == 1 and loaded["sdk"].count("wecom") == 1
    # The OpenLineage provider 2.20.3 is registered twice itself when providers load eagerly (its entry point
    # and its provider info both name OpenLineageProviderPlugin): its problem, not a registration of ours.
    errors = [p for p in (*loaded["core_errors"], *loaded["sdk_errors"]) if p != "OpenLineageProviderPlugin"]
    assert errors == []
    # No module of the package was imported under a bare name from the plugins folder.
    assert loaded["modules"] == []
    # A task's masker hides the secret extras by their names, Airflow's own sensitive names (task logs,
    # rendered templates): the plugin registers nothing.
    assert loaded["rendered"] == "aes *** robot *** strategy list"
