"""The Airflow plugin: the callback receiver, the "WeCom Sync" status page and its navigation entry.

Registered once, through the package's ``airflow.plugins`` entry point (``pip
install``; this repository's ``pip install -e .``), never from the plugins
folder (see plugins/.airflowignore). It also installs ``wecom.compat``'s
workaround for 3.3.2's connection-test port 0 (apache/airflow#73298). The
connection's secret extras need nothing from it: their names are ones Airflow
masks by itself. Airflow mounts plugin apps without any authentication of
its own: the receiver is public on purpose (WeCom signs every request, see
``wecom.callbacks.receiver``); the status app requires a logged-in Airflow user who
may read DAG runs, through the same dependency the core API uses, so an
anonymous request gets 401.

Every process that loads plugins imports this module (scheduler,
dag-processor, each task), but only the API server serves the apps: both are
built on their first request, so the others never import the API server's
modules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk.plugins_manager import AirflowPlugin
from starlette.types import ASGIApp, Receive, Scope, Send

from wecom.compat import ConnectionTestPortFix

if TYPE_CHECKING:
    from fastapi import FastAPI

    from wecom.companies import Company

STATUS_PREFIX = "/wecom/status"
RECEIVER_PREFIX = "/wecom"


class BuiltOnFirstRequest:
    """An ASGI app that builds the real one when the first request arrives."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> ASGIApp:
        with self._lock:
            if self._app is None:
                self._app = self._build()
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def status_targets() -> tuple[dict[str, list[Company]], str | None]:
    """Each target database the page reads, with the companies configured to sync into it, and what is
    wrong with the configuration (``None`` when the ``wecom_companies`` Variable and every company's
    ``wecom`` connection can be read).

    The databases are ``[wecom] status_target_conn_ids`` if set, else the companies' target databases,
    each named by its ``wecom`` connection's ``target_conn_id``, as for every DAG of the company.
    """
    from airflow.sdk import Variable  # noqa: PLC0415

    from wecom import config  # noqa: PLC0415
    from wecom.companies import read_companies  # noqa: PLC0415
    from wecom.constants import COMPANIES_VARIABLE  # noqa: PLC0415
    from wecom.hooks.wecom import WeComHook  # noqa: PLC0415

    configured = read_companies(Variable.get(COMPANIES_VARIABLE, default=None))
    companies, problems = configured.companies, list(configured.problems)
    target_of: dict[str, str] = {}
    for company in companies:
        try:
            target_of[company.name] = WeComHook(company.wecom_conn_id).settings.target_conn_id
        except Exception as problem:  # one unreadable connection must not hide the other companies
            problems.append(f"company {company.name!r}: connection {company.wecom_conn_id!r}: {problem}")
    conn_ids = config.status_target_conn_ids() or list(dict.fromkeys(target_of.values()))
    targets = {conn_id: [c for c in companies if target_of.get(c.name) == conn_id] for conn_id in conn_ids}
    return targets, "; ".join(problems) or None


def ui_run_link() -> Callable[[str, str], str]:
    """``run_link(dag_id, run_id)``: the run's page in the Airflow UI, under ``[api] base_url``'s path."""
    from wecom import config  # noqa: PLC0415
    from wecom.status import airflow_run_url  # noqa: PLC0415

    root = urlsplit(config.airflow_base_url()).path
    return partial(airflow_run_url, root)


def create_status_app() -> FastAPI:
    """The status app; every route requires read access to DAG runs."""
    # Lazy: the API server's modules, only where the app serves.
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity  # noqa: PLC0415
    from airflow.api_fastapi.core_api.security import requires_access_dag  # noqa: PLC0415
    from airflow.sdk import BaseHook  # noqa: PLC0415
    from airflow.sdk.exceptions import AirflowNotFoundException  # noqa: PLC0415
    from fastapi import Depends, FastAPI  # noqa: PLC0415
    from fastapi.responses import HTMLResponse  # noqa: PLC0415
    from sqlalchemy import Engine  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from wecom.status import DatabaseStatus, read_database  # noqa: PLC0415
    from wecom.status.page import render_page  # noqa: PLC0415
    from wecom.store.engine import engine_from_airflow_connection  # noqa: PLC0415

    engines: dict[str, Engine] = {}
    run_link = ui_run_link()

    def database_status(conn_id: str, companies: list[Company]) -> DatabaseStatus:
        try:
            engine = engine_from_airflow_connection(BaseHook.get_connection(conn_id), timeout_s=5)
            engine = engines.setdefault(engine.url.render_as_string(hide_password=False), engine)
            return read_database(conn_id, engine, companies)
        except (SQLAlchemyError, ValueError, AirflowNotFoundException) as error:
            # The class only: driver messages can carry host names and user names.
            return DatabaseStatus(conn_id, error=f"{type(error).__name__} (see the API server log)")

    app = FastAPI(
        title="WeCom Sync status",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))],
    )

    @app.get("/", response_class=HTMLResponse)
    def status_page() -> str:
        targets, config_error = status_targets()
        databases = [database_status(conn_id, companies) for conn_id, companies in targets.items()]
        return render_page(databases, run_link=run_link, config_error=config_error)

    return app


def _receiver_app() -> FastAPI:
    from wecom.receiver import airflow_app  # noqa: PLC0415

    return airflow_app()


class WeComPlugin(AirflowPlugin):
    name = "wecom"

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        """Runs in every process that loads plugins (the API server, each task) before it serves or renders."""
        from wecom import config  # noqa: PLC0415

        config.warn_about_dropped_environment()

    # Order matters: Starlette tries mounts in order and /wecom would swallow /wecom/status.
    fastapi_apps: list[dict[str, Any]] = [  # noqa: RUF012 (AirflowPlugin's own interface)
        {"app": BuiltOnFirstRequest(create_status_app), "url_prefix": STATUS_PREFIX, "name": "WeCom Sync status"},
        {"app": BuiltOnFirstRequest(_receiver_app), "url_prefix": RECEIVER_PREFIX, "name": "WeCom callback receiver"},
    ]
    # apache/airflow#73298, until the pinned Airflow has the fix (wecom.compat).
    fastapi_root_middlewares: list[dict[str, Any]] = [  # noqa: RUF012
        {"middleware": ConnectionTestPortFix, "name": "WeCom connection test: port 0 is no port"}
    ]
    external_views: list[dict[str, Any]] = [  # noqa: RUF012
        {
            # The 3.3 nav prints this under the icon in a narrow button, where "WeCom Sync" was cut off.
            "name": "WeCom",
            "href": f"{STATUS_PREFIX.lstrip('/')}/",
            "url_route": "wecom-sync",
            "destination": "nav",
        }
    ]
