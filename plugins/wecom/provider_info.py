"""What ``pip install`` registers with Airflow through the ``apache_airflow_provider`` entry point.

Airflow 3.2+ reads a connection type's form from here (``conn-fields`` and
``ui-field-behaviour``) instead of the hook's deprecated
``get_connection_form_widgets``/``get_ui_field_behaviour``, so the API server
builds the form without importing the hook. Bounds and choices come from
``wecom.settings``, the code that validates the same fields at task start, so
the form cannot drift from what is accepted.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from wecom.extract import CHOICES as STRATEGIES
from wecom.settings import DEFAULT_BASE_URL, FLOAT_OPTIONS, INT_OPTIONS

PACKAGE_NAME = "wecom-airflow-sync"
CONNECTION_TYPE = "wecom"

_OPTION_HELP = {
    "max_workers": "Parallel API calls during extraction (default 8).",
    "rate_limit_per_minute": "Client-side cap per API and minute (WeCom allows 10,000 per corp).",
    "rate_limit_per_hour": "Client-side cap per API and hour (WeCom allows 150,000 per corp).",
    "timeout": "Seconds to wait for one HTTP answer.",
    "max_retries": "Retries of a transient failure (system busy, timeouts) before the task fails.",
    "rate_limit_wait": "Longest wait in seconds for a 45009 block to lift before giving up.",
    "callback_max_body_bytes": "Largest callback POST body the receiver accepts (413 above it).",
    "callback_timestamp_window_s": "How far a callback's timestamp may be from now, in seconds (403 outside).",
}


def _string(label: str, description: str, *, secret: bool = False, **schema: Any) -> dict[str, Any]:
    fmt = {"format": "password"} if secret else {}
    return {"label": label, "description": description, "schema": {"type": ["string", "null"], **fmt, **schema}}


def _numbers() -> dict[str, Any]:
    fields = {}
    for name, (low, high) in (INT_OPTIONS | FLOAT_OPTIONS).items():
        kind = "integer" if name in INT_OPTIONS else "number"
        fields[name] = {
            "label": name.replace("_", " ").capitalize(),
            "description": _OPTION_HELP[name],
            "schema": {"type": [kind, "null"], "minimum": low, "maximum": high},
        }
    return fields


def connection_fields() -> dict[str, Any]:
    """The extra fields of the ``wecom`` connection form, keyed as they are stored in ``extra``."""
    return {
        "agent_id": _string(
            "Agent ID", "The app's AgentId (digits); empty for the contact-sync assistant.", pattern="^[0-9]*$"
        ),
        "callback_token": _string(
            "Callback Token", "Token of the contact-change callback (up to 32 letters and digits).", secret=True
        ),
        "encoding_aes_key": _string(
            "EncodingAESKey", "43 letters and digits, from the same callback settings page.", secret=True
        ),
        "strategy": {
            "label": "Extraction strategy",
            "description": "auto picks the cheapest strategy the secret may use.",
            "schema": {"type": ["string", "null"], "enum": list(STRATEGIES), "default": "auto"},
        },
        "target_conn_id": _string(
            "Target database connection",
            "Connection of the SQL database the directory lands in.",
            default="wecom_target_db",
        ),
        "robot_webhook_key": _string(
            "Alert robot webhook key",
            "The key=... of a group robot's webhook URL; failed runs, a tripped deletion guard and dead "
            "callback events are posted there. Empty: no robot alerts.",
            secret=True,
        ),
        "fetch_conn_id": _string(
            "Callback fetch connection",
            "Another wecom connection whose secret the callback DAG uses to read ids-only events' members and "
            "departments (user/get, department/get), e.g. the contact-sync secret while full syncs use an app's. "
            "Empty: this connection's secret.",
            pattern="^[A-Za-z0-9_.-]*$",
        ),
        **_numbers(),
    }


UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "API base URL", "login": "Corp ID", "password": "Secret"},
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "login": "ww0123456789abcdef",
        "password": "the contact-sync assistant's or the app's secret",
        "agent_id": "1000002",
        "callback_token": "up to 32 letters and digits",
        "encoding_aes_key": "43 letters and digits",
        "target_conn_id": "wecom_target_db",
        "robot_webhook_key": "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
        "fetch_conn_id": "wecom_contacts",
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE_NAME,
        "name": "WeCom",
        "description": "Keeps a WeCom (WeChat Work) company directory in a SQL database: full syncs, "
        "contact-change callbacks, a status page and group-robot alerts.",
        "versions": [version(PACKAGE_NAME)],
        "integrations": [
            {
                "integration-name": "WeCom",
                "external-doc-url": "https://developer.work.weixin.qq.com/document/path/90664",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "WeCom", "python-modules": ["wecom.hooks.wecom"]}],
        "operators": [{"integration-name": "WeCom", "python-modules": ["wecom.operators.extract"]}],
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": "wecom.hooks.wecom.WeComHook",
                "hook-name": "WeCom",
                "conn-fields": connection_fields(),
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "notifications": ["wecom.notifications.wecom_robot.WeComRobotNotifier"],
        "plugins": [{"name": "wecom", "plugin-class": "wecom.plugin.WeComPlugin"}],
    }
