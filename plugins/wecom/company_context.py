"""One company as a task sees it, resolved once: its settings, target database, loader and staging area.

A task (or a failure callback) opens one ``CompanyContext`` for its company's ``wecom`` connection
and passes it down, so the connection is parsed once, one engine is opened on the target database
and disposed of at the end, and every helper reads the same values. Where a company's tables live
is the ``target_conn_id`` of its ``wecom`` connection: the receiver and the rate budget read the
same setting, so events, snapshots and budgets cannot end up in different databases.

Resolving fails in one line naming the connection to fix (``ConnectionConfigError``, a permanent
error: the task fails without its retries); so does reaching a database that retrying cannot help,
while a refused or silent server, perhaps restarting, is ``TargetUnavailableError`` and goes through
the DAG's retries.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Self

from airflow.sdk import BaseHook, Connection, Context, ObjectStoragePath
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from wecom import config
from wecom.datasets import TableLocation, table_location
from wecom.errors import ConnectionConfigError, SettingsError, TargetLocationError, TargetUnavailableError
from wecom.hooks.wecom import WeComHook
from wecom.notifications.wecom_robot import post_alert
from wecom.settings import WeComSettings
from wecom.store.engine import engine_from_airflow_connection, location, unreachable
from wecom.store.stage_path import StagePath, run_folder

if TYPE_CHECKING:
    from wecom.store.loader import DirectoryLoader
    from wecom.store.run_spool import RunSpool

log = logging.getLogger(__name__)


class CompanyContext:
    """The company of one ``wecom`` connection, for the length of one task: ``with CompanyContext(conn_id)
    as company: ...``. The settings are read at once (a missing or malformed connection is a
    ``ConnectionConfigError`` before anything else happens); the target database is opened on first use."""

    def __init__(self, wecom_conn_id: str, *, hook: WeComHook | None = None) -> None:
        """``hook``: the caller's own hook of this connection (an operator's), so it is not read twice."""
        self.conn_id = wecom_conn_id
        self._hook = hook or WeComHook(wecom_conn_id)
        self.settings = _settings(self._hook)

    @property
    def corp_id(self) -> str:
        return self.settings.corp_id

    @property
    def target_conn_id(self) -> str:
        return self.settings.target_conn_id

    @cached_property
    def target_connection(self) -> Connection:
        """The target database's Airflow connection (``target_conn_id``)."""
        try:
            return BaseHook.get_connection(self.target_conn_id)
        except AirflowNotFoundException:
            raise ConnectionConfigError(
                f"connection {self.conn_id!r} names target database connection {self.target_conn_id!r}, which does "
                f"not exist: add it (Admin > Connections) or set target_conn_id in {self.conn_id!r}'s extra"
            ) from None

    @cached_property
    def location(self) -> TableLocation:
        """Where the company's tables live, as their asset URIs and lineage names need it; a connection
        they cannot be derived from (a relative SQLite path, no PostgreSQL host) is a ``ConnectionConfigError``."""
        try:
            return table_location(self.target_connection)
        except TargetLocationError as error:
            raise ConnectionConfigError(f"target database of {self.conn_id!r}: {error}") from None

    @cached_property
    def engine(self) -> Engine:
        connection = self.target_connection
        try:
            return engine_from_airflow_connection(connection)
        except ValueError as error:  # not a sqlite or postgres connection, or no path
            raise ConnectionConfigError(f"target database of {self.conn_id!r}: {error}") from None

    @cached_property
    def loader(self) -> DirectoryLoader:
        # Imported here: the loader brings pandas and pyarrow, which the sensor never needs.
        from wecom.store.loader import DirectoryLoader  # noqa: PLC0415

        return DirectoryLoader(self.engine)

    @cached_property
    def hook(self) -> WeComHook:
        """The company's ``wecom`` hook, counting its rate budget on this context's engine."""
        self._hook.target_engine = self.engine
        return self._hook

    @cached_property
    def staging(self) -> StagePath:
        """The root of the staging area (``[wecom] staging_uri``)."""
        return ObjectStoragePath(config.staging_uri())

    def run_folder(self, dag_id: str, run_id: str) -> StagePath:
        """This company's folder of one DAG run in the staging area."""
        return run_folder(self.staging, self.corp_id, dag_id, run_id)

    @property
    def failed_runs(self) -> RunSpool:
        """Where the company's failed runs wait while its target database is down."""
        from wecom.store.run_spool import RunSpool  # noqa: PLC0415

        return RunSpool.of_company(self.staging, self.corp_id)

    def ensure_schema(self) -> DirectoryLoader:
        """The loader, its missing tables created: the first task of every DAG, so that a database that
        cannot be reached fails before anything else, in one line naming the connection, where it points
        and what to do. At once (``ConnectionConfigError``) for what retrying cannot fix: an unknown host,
        database or user, a refused login, an SQLite path that cannot be opened. Refused or unanswered
        connections may be a server restarting: ``TargetUnavailableError``, retried by the DAG's retries.
        A connection the tables' asset URIs cannot be built from (``location``) fails here as well."""
        log.info("the tables' assets are %s", self.location.asset_uri("<table>"))
        try:
            self.loader.ensure_schema()
        except OperationalError as error:
            reason = unreachable(error)
            target = self.target_conn_id
            message = (
                f"target database {target!r} of connection {self.conn_id!r} ({location(self.engine.url)}): "
                f"{reason.problem}: {reason.advice} in connection {target!r}"
            )
            if reason.transient:
                raise TargetUnavailableError(f"{message}; the task is retried as the DAG's retries allow") from None
            raise ConnectionConfigError(message) from None
        return self.loader

    def fetch_hook(self) -> WeComHook:
        """The hook whose secret the callback applier completes ids-only events with (user/get,
        department/get): the connection's ``fetch_conn_id`` when set, else the company's own."""
        fetch_conn_id = self.settings.fetch_conn_id
        if fetch_conn_id is None or fetch_conn_id == self.conn_id:
            return self.hook
        fetch = WeComHook(fetch_conn_id, target_engine=self.engine)
        if fetch.settings.corp_id != self.corp_id:
            raise ConnectionConfigError(
                f"connection {self.conn_id!r}: fetch_conn_id {fetch_conn_id!r} is a connection of corp "
                f"{fetch.settings.corp_id!r}, not {self.corp_id!r}; name a connection of the same corp"
            )
        return fetch

    def alert(self, context: Context, title: str, reason: str | None = None) -> None:
        """A group-robot alert; one that cannot be sent is logged and never fails or hides anything else."""
        try:
            post_alert(self.settings, context, title, reason)
        except Exception:
            log.exception("could not send the WeCom robot alert")

    def close(self) -> None:
        """Dispose of the target engine, if the task opened it."""
        if "engine" in self.__dict__:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _settings(hook: WeComHook) -> WeComSettings:
    """The company's ``wecom`` connection, parsed; missing or malformed is a ``ConnectionConfigError``."""
    try:
        return hook.settings
    except AirflowNotFoundException:
        raise ConnectionConfigError(
            f"connection {hook.wecom_conn_id!r} does not exist: add it (Admin > Connections, type WeCom) "
            "or name another in the company's wecom_conn_id (Variable wecom_companies)"
        ) from None
    except SettingsError as error:
        raise ConnectionConfigError(f"{error} (Admin > Connections)") from None
