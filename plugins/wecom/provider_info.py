"""What ``pip install`` registers with Airflow through the ``apache_airflow_provider`` entry point.

A literal dict importing nothing: every Airflow process that discovers
providers (``import airflow.sdk`` can) calls ``get_provider_info``, so an
import here would load in all of them. Airflow 3.2+ reads the connection form
from here (``conn-fields``, ``ui-field-behaviour``) without importing the hook.
The bounds and choices repeat ``wecom.settings``, which validates the same
fields at task start; tests/wecom/test_provider_info.py checks that they agree.
``format: password`` makes the form hide what is typed; the REST API and the UI
mask stored values by key name, which ``wecom.plugin`` registers with Airflow.

The plugin is registered through the ``airflow.plugins`` entry point only (no
``plugins`` key here): a provider's ``plugins`` list is loaded as well when
``[core] lazy_discover_providers`` is off, and Airflow reports the second
registration as a plugin import error.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "wecom-airflow-sync"
CONNECTION_TYPE = "wecom"
_TEXT = ["string", "null"]


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
        "operators": [{"integration-name": "WeCom", "python-modules": ["wecom.operators.extract"]}],
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
                "conn-fields": {
                    "agent_id": {
                        "label": "Agent ID",
                        "description": "The app's AgentId (digits); empty for the contact-sync assistant.",
                        "schema": {"type": _TEXT, "pattern": "^[0-9]*$"},
                    },
                    "callback_token": {
                        "label": "Callback Token",
                        "description": "Token of the contact-change callback (up to 32 letters and digits).",
                        "schema": {"type": _TEXT, "format": "password"},
                    },
                    "encoding_aes_key": {
                        "label": "EncodingAESKey",
                        "description": "43 letters and digits, from the same callback settings page.",
                        "schema": {"type": _TEXT, "format": "password"},
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
                        "schema": {"type": _TEXT, "default": "wecom_target_db"},
                    },
                    "robot_webhook_key": {
                        "label": "Alert robot webhook key",
                        "description": "The key=... of a group robot's webhook URL; failed runs, a tripped deletion "
                        "guard and dead callback events are posted there. Empty: no robot alerts.",
                        "schema": {"type": _TEXT, "format": "password"},
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
                        "description": "Parallel API calls during extraction (default 8).",
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
                        "description": "Calls per API and hour for this corp (WeCom allows 150,000), shared like the "
                        "per-minute limit.",
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
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "API base URL", "login": "Corp ID", "password": "Secret"},
                    "placeholders": {
                        "host": "https://qyapi.weixin.qq.com",
                        "login": "ww0123456789abcdef",
                        "password": "the contact-sync assistant's or the app's secret",
                        "agent_id": "1000002",
                        "callback_token": "up to 32 letters and digits",
                        "encoding_aes_key": "43 letters and digits",
                        "target_conn_id": "wecom_target_db",
                        "robot_webhook_key": "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
                        "fetch_conn_id": "wecom_contacts",
                    },
                },
            }
        ],
        "notifications": ["wecom.notifications.wecom_robot.WeComRobotNotifier"],
    }
