"""Loads the WeCom plugin from the plugins folder, for deployments that copy ``plugins/`` without ``pip install``.

When the package is installed, its ``airflow.plugins`` entry point already
registers the plugin; defining it here too would make Airflow report a
duplicate as a plugin import error, so this file then defines nothing.
"""

from importlib.metadata import entry_points

if not any(ep.value == "wecom.plugin:WeComPlugin" for ep in entry_points(group="airflow.plugins")):
    from wecom.plugin import WeComPlugin

    __all__ = ["WeComPlugin"]
