"""What ``pip install`` registers with Airflow through the ``apache_airflow_provider`` entry point.

Literal dicts importing only ``wecom.constants``: every Airflow process that
discovers providers (``import airflow.sdk`` can) calls ``get_provider_info``, so
an import here would load in all of them. Airflow 3.2+ reads the connection form
from here (``conn-fields``, ``ui-field-behaviour``) without importing the hook,
and every component reads the ``[wecom]`` section's options and defaults from
``config`` (``airflow config list --section wecom``). The bounds and choices
repeat ``wecom.settings``, which validates the same fields at task start;
tests/wecom/test_provider_info.py checks that they agree. ``format: password``
makes the form hide what is typed.

The plugin is registered through the ``airflow.plugins`` entry point only (no
``plugins`` key here): a provider's ``plugins`` list is loaded as well when
``[core] lazy_discover_providers`` is off, and Airflow reports the second
registration as a plugin import error.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from wecom import constants as c

PACKAGE_NAME = "wecom-airflow-sync"
CONNECTION_TYPE = "wecom"
_TEXT = ["string", "null"]
# The release that added the [wecom] section (Airflow's config reference shows it per option).
CONFIG_ADDED = "0.2.0"


def _option(kind: str, default: object, example: str | None, description: str) -> dict[str, Any]:
    """One ``[wecom]`` option as Airflow's provider schema has it (defaults are strings, as in airflow.cfg)."""
    default = None if default is None else str(default)
    return {
        "description": description,
        "version_added": CONFIG_ADDED,
        "type": kind,
        "example": example,
        "default": default,
    }


# The deployment's settings: one value for every company, the same in every Airflow component that reads
# it (docs/configuration.md says which). ``AIRFLOW__WECOM__<OPTION>`` sets one from the environment.
CONFIG = {
    c.CONFIG_SECTION: {
        "description": "Deployment settings of the WeCom directory sync. A company's own settings are in its "
        "wecom connection and the wecom_companies Variable (docs/configuration.md lists them all).",
        "options": {
            "staging_uri": _option(
                "string",
                c.DEFAULT_STAGING_URI,
                "s3://my-bucket/wecom-staging",
                "Where runs stage the raw and normalized files between tasks: a folder every worker "
                "reaches (any ObjectStoragePath: file://, s3://, gs://...). The default suits one machine.",
            ),
            "status_target_conn_ids": _option(
                "string",
                "",
                "wecom_target_db,wecom_eu_db",
                "Comma-separated target database connections the WeCom status page reads. Empty: the target "
                "database of every company in the wecom_companies Variable.",
            ),
            "default_deferrable": _option(
                "boolean",
                "True",
                "False",
                "Whether the callback sensor defers to the triggerer while it waits (no worker slot held) "
                "unless a DAG passes deferrable itself; False pokes from a worker, in the sensor's mode.",
            ),
            "callback_poll_interval": _option(
                "float",
                c.DEFAULT_POLL_INTERVAL_S,
                "2.0",
                "Seconds between two looks for ready callback events (the sensor's poke_interval and its "
                "trigger's poll): roughly how long a stored event waits before it is applied.",
            ),
            "callback_wait_timeout": _option(
                "float",
                c.DEFAULT_CALLBACK_WAIT_TIMEOUT_S,
                "86400",
                "Seconds one run of the callback DAG waits for events; then the run is skipped and the next "
                "one starts waiting. Shorter shows an idle company's liveness more often in the run list.",
            ),
            "callback_max_attempts": _option(
                "integer",
                c.DEFAULT_MAX_ATTEMPTS,
                "10",
                "Attempts at applying a callback event before it is dead (kept with its error, alerted "
                "through the group robot, never applied).",
            ),
        },
    }
}


# The connection form's extra fields; Airflow 3.2+ builds the form from these.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "agent_id": {
        "label": "Agent ID",
        "description": "The app's AgentId (digits); empty for the contact-sync assistant.",
        "schema": {"type": _TEXT, "pattern": "^[0-9]*$"},
    },
    "callback_token": {
        "label": "Callback Token",
        "description": "Token of the contact-change callback (up to 32 letters and digits).",
        "schema": {"type": _TEXT},
    },
    "callback_aes_secret": {
        "label": "EncodingAESKey",
        "description": "The callback's EncodingAESKey: 43 letters and digits, from the same callback settings page.",
        "schema": {"type": _TEXT},
    },
    "strategy": {
        "label": "Extraction strategy",
        "description": "auto picks the cheapest strategy the secret may use.",
        "schema": {
            "type": _TEXT,
            "enum": ["auto", "export", "list", "detail", "ids"],
            "default": "auto",
        },
    },
    "target_conn_id": {
        "label": "Target database connection",
        "description": "Connection of the SQL database the directory lands in.",
        "schema": {"type": _TEXT, "default": c.DEFAULT_TARGET_CONN_ID},
    },
    "robot_webhook_url": {
        "label": "Alert robot webhook URL",
        "description": "A group robot's webhook URL (.../cgi-bin/webhook/send?key=...); failed runs, a tripped "
        "deletion guard, dead callback events and lost rights are posted there. Empty: no robot alerts.",
        "schema": {"type": _TEXT},
    },
    "fetch_conn_id": {
        "label": "Callback fetch connection",
        "description": "Another wecom connection whose secret the callback DAG uses to read "
        "ids-only events' members and departments (user/get, department/get), e.g. the "
        "contact-sync secret while full syncs use an app's. Empty: this connection's secret.",
        "schema": {"type": _TEXT, "pattern": "^[A-Za-z0-9_.-]*$"},
    },
    "max_workers": {
        "label": "Max workers",
        "description": "Parallel WeCom API calls of one task: the extraction's walk and the callback "
        f"fetches (default {c.DEFAULT_MAX_WORKERS}).",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 256},
    },
    "callback_max_body_bytes": {
        "label": "Callback max body bytes",
        "description": "Largest callback POST body the receiver accepts (413 above it).",
        "schema": {"type": ["integer", "null"], "minimum": 1024, "maximum": 10_000_000},
    },
    "callback_timestamp_window_s": {
        "label": "Callback timestamp window s",
        "description": "How far a callback's timestamp may be from now, in seconds (403 outside).",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 604_800},
    },
    "rate_limit_per_minute": {
        "label": "Rate limit per minute",
        "description": "Calls per API and minute for this corp (WeCom allows 10,000), shared by every "
        "DAG and worker of the company, counted in the target database.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000},
    },
    "rate_limit_per_hour": {
        "label": "Rate limit per hour",
        "description": "Calls per API and hour for this corp (WeCom allows 150,000), shared like the per-minute limit.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 100_000_000},
    },
    "rate_limit_ip_per_minute": {
        "label": "Rate limit per IP and minute",
        "description": "Calls per API and minute from the egress IP (WeCom allows 20,000), shared by "
        "the companies whose target database is this one.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000},
    },
    "rate_limit_ip_per_hour": {
        "label": "Rate limit per IP and hour",
        "description": "Calls per API and hour from the egress IP (WeCom allows 600,000).",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 100_000_000},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries of a transient failure (system busy, timeouts) before the task fails.",
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
    },
    "timeout": {
        "label": "Timeout",
        "description": "Seconds to wait for one HTTP answer.",
        "schema": {"type": ["number", "null"], "minimum": 0.1, "maximum": 600.0},
    },
    "rate_limit_wait": {
        "label": "Rate limit wait",
        "description": "Longest wait in seconds for a 45009 block to lift before giving up.",
        "schema": {"type": ["number", "null"], "minimum": 0.0, "maximum": 3600.0},
    },
}
# The form hides what is typed in the secret extras.
for _name in c.SECRET_EXTRAS:
    CONN_FIELDS[_name]["schema"]["format"] = "password"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE_NAME,
        "name": "WeCom",
        "description": "Keeps a WeCom (WeChat Work) company directory in a SQL database: full syncs, "
        "contact-change callbacks, a status page and group-robot alerts.",
        "integrations": [
            {
                "integration-name": "WeCom",
                "external-doc-url": "https://developer.work.weixin.qq.com/document/path/90664",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "WeCom", "python-modules": ["wecom.hooks.wecom"]}],
        "operators": [
            {
                "integration-name": "WeCom",
                "python-modules": [
                    "wecom.operators.extract",
                    "wecom.operators.directory_tables",
                    "wecom.operators.load",
                    "wecom.operators.apply_callbacks",
                ],
            }
        ],
        # The directory tables' assets on SQLite (docs/data-platform.md); PostgreSQL's scheme is the
        # postgres provider's. The normalizer is a standard-library module, cheap for every process.
        "asset-uris": [
            {
                "schemes": ["sqlite"],
                "handler": "wecom.datasets.sanitize_sqlite_uri",
                "to_openlineage_converter": "wecom.lineage.convert_sqlite_asset",
            }
        ],
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": "wecom.hooks.wecom.WeComHook",
                "hook-name": "WeCom",
                "conn-fields": deepcopy(CONN_FIELDS),
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "API base URL", "login": "Corp ID", "password": "Secret"},
                    "placeholders": {
                        "host": c.DEFAULT_BASE_URL,
                        "login": "ww0123456789abcdef",
                        "password": "the contact-sync assistant's or the app's secret",
                        "agent_id": "1000002",
                        "callback_token": "up to 32 letters and digits",
                        "callback_aes_secret": "43 letters and digits",
                        "target_conn_id": c.DEFAULT_TARGET_CONN_ID,
                        "robot_webhook_url": f"{c.DEFAULT_BASE_URL}{c.ROBOT_WEBHOOK_PATH}?key=693a91f6-7xxx-...",
                        "fetch_conn_id": "wecom_contacts",
                    },
                },
            }
        ],
        "sensors": [{"integration-name": "WeCom", "python-modules": ["wecom.sensors.callback_events"]}],
        "triggers": [{"integration-name": "WeCom", "python-modules": ["wecom.triggers.callback_events"]}],
        "notifications": ["wecom.notifications.wecom_robot.WeComRobotNotifier"],
        "config": deepcopy(CONFIG),
    }
