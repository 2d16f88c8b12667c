"""The deployment's settings: the ``[wecom]`` section of Airflow's configuration, read here and only here.

The section is declared in ``wecom.provider_info`` (each option's description, type, default and
example), so ``airflow config list --section wecom`` shows it, ``airflow.cfg`` or
``AIRFLOW__WECOM__<OPTION>`` sets it, and every component reads the same value. The core never reads
configuration: the Airflow layer calls these functions and passes the values down as arguments.

The ``WECOM_*`` environment variables of release 0.1 are still read for this release, each with a
``FutureWarning`` naming the option that replaces it (the option wins when both are set); the next
release drops them.
"""

from __future__ import annotations

import os
import warnings

from airflow.sdk.configuration import conf

from wecom.constants import CONFIG_SECTION

# Environment variables of release 0.1 -> the option that replaces each.
RETIRED_ENVIRONMENT = {
    "WECOM_STAGING_URI": "staging_uri",
    "WECOM_STATUS_TARGET_CONN_IDS": "status_target_conn_ids",
    "WECOM_DELTA_MAX_ATTEMPTS": "callback_max_attempts",
    "WECOM_DELTA_POLL_S": "callback_poll_interval",
}
# Retired without a replacement, and why.
DROPPED_ENVIRONMENT = {
    "WECOM_SQL_DIR": "the SQL files ship inside the package (wecom.sql_files) and are read from there",
}


def _value(option: str) -> str:
    """The option as Airflow resolves it, or the retired variable's value when only that is set."""
    value = conf.get(CONFIG_SECTION, option)
    retired = next((name for name, new in RETIRED_ENVIRONMENT.items() if new == option), None)
    legacy = os.environ.get(retired) if retired else None
    if legacy is None:
        return value
    setting = f"[{CONFIG_SECTION}] {option} (AIRFLOW__{CONFIG_SECTION.upper()}__{option.upper()})"
    if value != conf.get_default_value(CONFIG_SECTION, option):
        warnings.warn(f"{retired} is ignored: {setting} is set", FutureWarning, stacklevel=3)
        return value
    warnings.warn(
        f"{retired} is deprecated and will be ignored in the next release: set {setting} instead",
        FutureWarning,
        stacklevel=3,
    )
    return legacy


def _number(option: str, kind: type[float] | type[int]) -> float | int:
    raw = _value(option)
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"[{CONFIG_SECTION}] {option} must be a {kind.__name__}, got {raw!r}") from None


def staging_uri() -> str:
    """Where runs stage their files; read by the workers (extract, transform, load, failure callbacks)."""
    return _value("staging_uri")


def status_target_conn_ids() -> list[str]:
    """The target databases the status page reads (empty: every company's); read by the API server."""
    return [conn_id.strip() for conn_id in _value("status_target_conn_ids").split(",") if conn_id.strip()]


def default_deferrable() -> bool:
    """Whether the callback sensor defers unless told; read where the DAG files are parsed."""
    return conf.getboolean(CONFIG_SECTION, "default_deferrable")


def callback_poll_interval() -> float:
    """Seconds between looks for ready callback events; read where the DAG files are parsed."""
    return float(_number("callback_poll_interval", float))


def callback_wait_timeout() -> float:
    """Seconds one callback DAG run waits before it is skipped; read where the DAG files are parsed."""
    return conf.getfloat(CONFIG_SECTION, "callback_wait_timeout")


def callback_max_attempts() -> int:
    """Attempts before a callback event is dead; read by the workers (the sensor and the applier)."""
    return int(_number("callback_max_attempts", int))


def airflow_base_url() -> str:
    """Airflow's own ``[api] base_url`` (links into the UI, the callback URL to paste), "" when unset."""
    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


def warn_about_dropped_environment() -> None:
    """One warning per variable that is set but no longer read (the plugin calls this as it loads)."""
    for name, why in DROPPED_ENVIRONMENT.items():
        if name in os.environ:
            warnings.warn(f"{name} is no longer read: {why}; unset it", FutureWarning, stacklevel=2)
