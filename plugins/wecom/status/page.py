"""The status page as HTML: the package's Jinja2 templates, autoescaped, filled from ``DatabaseStatus``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from wecom.runs import CHANGES, SNAPSHOT_STATUSES
from wecom.status import charts
from wecom.status.model import DatabaseStatus, run_seconds
from wecom.status.view import EVENT_STATUSES, age, corp_view, drift, duration, ended, number, tone, when

RunLink = Callable[[str, str], str]


@cache
def environment() -> Environment:
    """Templates from the installed package (``wecom/status/templates``), HTML-escaped by default."""
    env = Environment(
        loader=PackageLoader("wecom.status", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        age=age, duration=duration, when=when, tone=tone, drift=drift, ended=ended, number=number, seconds=run_seconds
    )
    env.globals.update(
        box={
            "width": charts.WIDTH,
            "height": charts.HEIGHT,
            "left": charts.LEFT,
            "right": charts.RIGHT,
            "top": charts.TOP,
            "bottom": charts.BOTTOM,
        },
        changes=CHANGES,
        event_statuses=EVENT_STATUSES,
        snapshot_statuses=SNAPSHOT_STATUSES,
    )
    return env


def render_page(
    databases: Sequence[DatabaseStatus],
    *,
    now: datetime | None = None,
    run_link: RunLink,
    config_error: str | None = None,
) -> str:
    """The whole page; ``run_link(dag_id, run_id)`` gives the URL of a run in the Airflow UI, and
    ``config_error`` says what is wrong with the company configuration (the ``wecom_companies``
    Variable, a company's ``wecom`` connection)."""
    now = now or datetime.now(UTC)
    views = [(db.conn_id, corp_view(corp, now)) for db in databases for corp in db.corps]
    views.sort(key=lambda item: (item[1].health.rank, item[1].name))
    return (
        environment()
        .get_template("status.html")
        .render(databases=databases, views=views, now=now, run_link=run_link, config_error=config_error)
    )
