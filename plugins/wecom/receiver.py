"""The callback receiver wired to Airflow: connections read through Airflow, the app the plugin
mounts, and the standalone command ``python -m wecom.receiver --conn-id wecom_default``.

The receiver itself (``wecom.callbacks.receiver``, ``wecom.callbacks.serve``) is pure and takes a
resolver; this module is the one place that gives it Airflow's connections.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from fastapi import FastAPI
from sqlalchemy import Engine

from wecom.callbacks import serve
from wecom.callbacks.receiver import AIRFLOW_URL_PREFIX, create_receiver_app
from wecom.callbacks.receiver_config import (
    ReceiverConfig,
    ReceiverLimits,
    Resolver,
    config_from_connection,
    receiver_engine,
)
from wecom.errors import ReceiverConfigError, UnknownConnectionError
from wecom.store.engine import target_url

log = logging.getLogger(__name__)
# What a standalone receiver says of a connection it cannot find (main's docstring says why).
STANDALONE_NOT_FOUND = (
    " in the AIRFLOW_CONN_* variables or the secrets backend; to read the connections of Airflow's metadata "
    "database, run the receiver with AIRFLOW__SECRETS__BACKEND=airflow.secrets.metastore.MetastoreBackend"
)


def airflow_resolver(limits: ReceiverLimits, *, not_found_hint: str = "") -> Resolver:
    """A resolver reading the ``wecom`` connection and its ``target_conn_id`` through Airflow.

    ``airflow.sdk.BaseHook.get_connection`` searches env vars (``AIRFLOW_CONN_*``), the configured
    secrets backends and, in the API server, the metadata database. The app caches what it returns;
    engines are kept per target URL so a refresh reuses the pool. ``not_found_hint`` ends the message
    of a connection that cannot be found.
    """
    from airflow.sdk import BaseHook  # noqa: PLC0415
    from airflow.sdk.exceptions import AirflowNotFoundException  # noqa: PLC0415

    engines: dict[str, Engine] = {}

    def engine_for(target_conn_id: str) -> Engine:
        try:
            url = target_url(BaseHook.get_connection(target_conn_id))
        except AirflowNotFoundException:
            raise ReceiverConfigError(f"target connection {target_conn_id!r} is not defined") from None
        except ValueError as exc:
            raise ReceiverConfigError(str(exc)) from None
        key = url.render_as_string(hide_password=False)
        if key not in engines:
            engines[key] = receiver_engine(url, limits)
        return engines[key]

    def resolve(conn_id: str) -> ReceiverConfig:
        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            raise UnknownConnectionError(f"no connection {conn_id!r}{not_found_hint}") from None
        return config_from_connection(conn_id, conn, engine_for)

    return resolve


def airflow_app() -> FastAPI:
    """The app the Airflow plugin mounts at ``AIRFLOW_URL_PREFIX`` (built once, on its first request)."""
    from wecom import config  # noqa: PLC0415

    base_url = config.airflow_base_url() or "https://<airflow host>"
    log.info(
        "wecom callback receiver: paste %s%s/callback/<conn_id> into the admin console",
        base_url,
        AIRFLOW_URL_PREFIX,
    )
    limits = ReceiverLimits()
    return create_receiver_app(airflow_resolver(limits), path_prefix="", limits=limits)


def main(argv: Sequence[str] | None = None) -> None:
    """The standalone receiver; ``--help`` lists its limits.

    Outside the API server Airflow reads connections from ``AIRFLOW_CONN_*`` variables and the configured
    secrets backend only, which suits an internet-facing process: it needs no access to Airflow's metadata
    database. To serve connections kept there, configure that database as this process's secrets backend
    (``[secrets] backend = airflow.secrets.metastore.MetastoreBackend``, docs/configuration.md).
    """
    serve.main(argv, partial(airflow_resolver, not_found_hint=STANDALONE_NOT_FOUND))


if __name__ == "__main__":
    main()
