"""Every default of the package, once: connection ids, the API's base URL, worker counts, poll intervals.

A leaf module (standard library only): the core takes these as default arguments, the Airflow layer
declares the ``[wecom]`` configuration section from them (``wecom.provider_info``) and reads it
(``wecom.config``), and docs/configuration.md lists them. Per-company settings live in the ``wecom``
connection (``wecom.settings`` parses it); per-deployment settings in ``[wecom]``.
"""

from __future__ import annotations

# Connections a company uses unless the ``wecom_companies`` Variable or the connection names others.
DEFAULT_WECOM_CONN_ID = "wecom_default"
DEFAULT_TARGET_CONN_ID = "wecom_target_db"
COMPANIES_VARIABLE = "wecom_companies"

# WeCom's API host; a connection's host overrides it (a proxy, the simulator).
DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"

# Parallel WeCom API calls one task makes: the extraction's walk and the callback applier's fetches alike.
# A ceiling: the concurrency gate (wecom.api.concurrency) backs off on 45033 and slow answers.
DEFAULT_MAX_WORKERS = 8

# Callback events: attempts before an event is dead; how often the sensor and its trigger look for ready
# events; how long one run of the callback DAG waits before it is skipped and the next run starts waiting.
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_POLL_INTERVAL_S = 5.0
DEFAULT_CALLBACK_WAIT_TIMEOUT_S = 3600.0

# The Airflow configuration section of the deployment's settings (declared in wecom.provider_info).
CONFIG_SECTION = "wecom"
# Where runs stage their files when ``[wecom] staging_uri`` is not set; Airflow expands {AIRFLOW_HOME}.
DEFAULT_STAGING_URI = "file://{AIRFLOW_HOME}/wecom-staging"

# The secrets a ``wecom`` connection holds besides its password: the form hides what is typed in them,
# the hook masks their values, alerts leave them out. Named so that Airflow itself masks them by name in
# the REST API, the UI and logs: its default sensitive names include "token", "secret" and "webhook_url".
SECRET_EXTRAS = ("callback_token", "callback_aes_secret", "robot_webhook_url")
# Their names of release 0.1, still read this release with a warning: Airflow did not mask these by name.
RENAMED_EXTRAS = {"encoding_aes_key": "callback_aes_secret", "robot_webhook_key": "robot_webhook_url"}
# Where a group robot takes messages, on the API host: ``<base URL>/cgi-bin/webhook/send?key=<key>``.
ROBOT_WEBHOOK_PATH = "/cgi-bin/webhook/send"
