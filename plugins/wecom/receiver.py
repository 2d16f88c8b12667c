"""The callback receiver wired to Airflow: connections read through Airflow, the app the plugin
mounts, and the standalone command ``python -m wecom.receiver --conn-id wecom_default``.

The receiver itself (``wecom.callbacks.receiver``, ``wecom.callbacks.serve``) is pure and takes a
resolver; this module is the one place that gives it Airflow's connections.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

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


def airflow_resolver(limits: ReceiverLimits) -> Resolver:
    """A resolver reading the ``wecom`` connection and its ``target_conn_id`` through Airflow.

    ``airflow.sdk.BaseHook.get_connection`` searches env vars (``AIRFLOW_CONN_*``),
    the configured secrets backends and, in server processes (the API server;
    the standalone CLI marks itself as one), the metastore. The app caches what
    it returns; engines are kept per target URL so a refresh reuses the pool.
    """
    # Imported here, not at the top: main() must mark this process as a server before Airflow loads.
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
            raise UnknownConnectionError(f"no connection {conn_id!r}") from None
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
    """The standalone receiver; ``--help`` lists its limits."""
    # Like `airflow connections get`: env vars, secrets backends, then the metastore.
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    serve.main(argv, airflow_resolver)


if __name__ == "__main__":
    main()
