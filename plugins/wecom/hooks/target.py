"""The company's target database as the tasks reach it, and the configuration errors on the way.

Where a company's tables live is the ``target_conn_id`` of its ``wecom`` connection. Resolving it
fails in one line naming the connection to fix (``ConfigurationError``, which Airflow does not
retry); so does reaching a database that retrying cannot help, while a refused or silent server,
perhaps restarting, is ``TargetUnavailable`` and goes through the DAG's retries.
"""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException
from sqlalchemy.exc import OperationalError

from wecom.errors import SettingsError
from wecom.hooks.wecom import WeComHook
from wecom.settings import WeComSettings
from wecom.store.engine import engine_from_airflow_connection, location, unreachable
from wecom.store.loader import DirectoryLoader


class ConfigurationError(AirflowFailException):
    """A setting that retrying cannot fix: the task fails at once, in one line saying what to change."""


class TargetUnavailable(AirflowException):
    """The target database did not answer (it may be restarting): retried as the DAG's retries allow."""


def company_settings(wecom_conn_id: str) -> WeComSettings:
    """The company's ``wecom`` connection, parsed; missing or malformed is a ``ConfigurationError``."""
    try:
        return WeComHook(wecom_conn_id).settings
    except AirflowNotFoundException:
        raise ConfigurationError(
            f"connection {wecom_conn_id!r} does not exist: add it (Admin > Connections, type WeCom) "
            "or name another in the company's wecom_conn_id (Variable wecom_companies)"
        ) from None
    except SettingsError as error:
        raise ConfigurationError(f"{error} (Admin > Connections)") from None


def target_loader(wecom_conn_id: str) -> DirectoryLoader:
    """A loader on the company's target database (sqlite or postgres).

    One rule for where a company's tables live: the ``target_conn_id`` of its ``wecom`` connection
    (default ``wecom_target_db``), as ``WeComSettings`` parses it; the receiver and the rate budget
    read the same setting, so events, snapshots and budgets cannot end up in different databases.
    A missing or malformed connection raises ``ConfigurationError``.
    """
    target_conn_id = company_settings(wecom_conn_id).target_conn_id
    try:
        return DirectoryLoader(engine_from_airflow_connection(BaseHook.get_connection(target_conn_id)))
    except AirflowNotFoundException:
        raise ConfigurationError(
            f"connection {wecom_conn_id!r} names target database connection {target_conn_id!r}, which does "
            f"not exist: add it (Admin > Connections) or set target_conn_id in {wecom_conn_id!r}'s extra"
        ) from None
    except ValueError as error:  # not a sqlite or postgres connection, or no path
        raise ConfigurationError(f"target database of {wecom_conn_id!r}: {error}") from None


def ensure_target_schema(wecom_conn_id: str) -> DirectoryLoader:
    """The company's loader, its missing tables created: the first task of every DAG, so that a database
    that cannot be reached fails before anything else, in one line naming the connection, where it points
    and what to do. At once (``ConfigurationError``) for what retrying cannot fix: an unknown host,
    database or user, a refused login, an SQLite path that cannot be opened. Refused or unanswered
    connections may be a server restarting: ``TargetUnavailable``, retried by the DAG's retries."""
    loader = target_loader(wecom_conn_id)
    try:
        loader.ensure_schema()
    except OperationalError as error:
        reason = unreachable(error)
        target_conn_id = company_settings(wecom_conn_id).target_conn_id
        message = (
            f"target database {target_conn_id!r} of connection {wecom_conn_id!r} ({location(loader.engine.url)}): "
            f"{reason.problem}: {reason.advice} in connection {target_conn_id!r}"
        )
        if reason.transient:
            raise TargetUnavailable(f"{message}; the task is retried as the DAG's retries allow") from None
        raise ConfigurationError(message) from None
    return loader
