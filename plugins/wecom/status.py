"""The status page's data and HTML: what an on-call engineer needs about each company, without Airflow.

``read_status`` queries one target database (``include/sql/status/``);
``render_page`` turns the result into one self-contained HTML page with
inline SVG charts (no script, no CDN: it works offline and behind strict
CSPs). The Airflow plugin only adds authentication, finds the databases
and supplies the links into the Airflow UI. Optional columns that newer
schemas add to ``wecom_sync_runs`` (``drift_total``, ``drift``, ``plan``)
are shown where they exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, inspect, text

from wecom.directory.rights import Rights, advice, describe
from wecom.runs import SNAPSHOT_STATUSES
from wecom.sql import parse_db_time, read_named_statements

STATUS_SQL = "status/status.sql"
HISTORY_RUNS = 60
ERROR_ROWS = 10
EVENT_STATUSES = ("pending", "failed", "dead", "applied", "superseded", "ignored")
TIME_COLUMNS = ("logical_date", "observed_at", "started_at", "finished_at")

RunLink = Callable[[str, str], str]


@dataclass(frozen=True)
class EventQueue:
    """The callback events of one company by status, and when the oldest pending one arrived."""

    counts: dict[str, int] = field(default_factory=dict)
    oldest_pending_at: datetime | None = None

    def lag_seconds(self, now: datetime) -> float:
        """How long the oldest pending event has waited; 0 with nothing pending."""
        return max(0.0, (now - self.oldest_pending_at).total_seconds()) if self.oldest_pending_at else 0.0


@dataclass(frozen=True)
class CorpStatus:
    """One company as the target database knows it; runs are ``wecom_sync_runs`` rows as dicts."""

    corp_id: str
    last_full: dict[str, Any] | None = None
    last_delta: dict[str, Any] | None = None
    last_guarded: dict[str, Any] | None = None
    last_snapshot: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # full runs, oldest first
    events: EventQueue = field(default_factory=EventQueue)
    event_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def guard_tripped(self) -> bool:
        """The newest snapshot run was stopped by the guard: full syncs stay blocked until resolved."""
        return bool(self.last_guarded and self.last_guarded["status"] == "guard_tripped")


@dataclass(frozen=True)
class DatabaseStatus:
    """What one target database (named by its Airflow connection) holds, or why it could not be read."""

    conn_id: str
    corps: list[CorpStatus] = field(default_factory=list)
    error: str | None = None


def airflow_run_url(base: str, dag_id: str, run_id: str) -> str:
    """A DAG run's page in the Airflow UI; ``base`` is ``[api] base_url`` or just its path."""
    return f"{base.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def event_queue(conn: Connection, corp_id: str) -> EventQueue:
    sql = read_named_statements(STATUS_SQL, conn.dialect.name)
    rows = conn.execute(text(sql["event_counts"]), {"corp_id": corp_id}).all()
    oldest = next((parse_db_time(first) for status, _, first in rows if status == "pending"), None)
    return EventQueue({status: n for status, n, _ in rows}, oldest)


def run_row(mapping: Any) -> dict[str, Any]:
    """A ``wecom_sync_runs`` row as a dict with aware datetimes (SQLite stores text)."""
    row = dict(mapping)
    for column in TIME_COLUMNS:
        if column in row:
            row[column] = parse_db_time(row[column])
    return row


def _first(conn: Connection, statement: str, **params: Any) -> dict[str, Any] | None:
    found = conn.execute(text(statement), params).mappings().first()
    return run_row(found) if found else None


def read_status(engine: Engine, *, history: int = HISTORY_RUNS, errors: int = ERROR_ROWS) -> list[CorpStatus]:
    """Every company found in ``engine``; an empty list when no sync or callback wrote there yet."""
    sql = read_named_statements(STATUS_SQL, engine.dialect.name)
    tables = inspect(engine)
    has_runs, has_events = tables.has_table("wecom_sync_runs"), tables.has_table("wecom_callback_events")
    with engine.connect() as conn:
        corps: set[str] = set()
        if has_runs:
            corps.update(conn.execute(text(sql["corps_with_runs"])).scalars())
        if has_events:
            corps.update(conn.execute(text(sql["corps_with_events"])).scalars())
        result = []
        for corp_id in sorted(corps):
            facts: dict[str, Any] = {}
            if has_runs:
                facts["last_full"] = _first(conn, sql["last_run"], corp_id=corp_id, kind="full")
                facts["last_delta"] = _first(conn, sql["last_run"], corp_id=corp_id, kind="delta")
                facts["last_guarded"] = _first(conn, sql["last_guarded_run"], corp_id=corp_id)
                facts["last_snapshot"] = _first(conn, sql["last_snapshot_run"], corp_id=corp_id)
                rows = conn.execute(text(sql["full_run_history"]), {"corp_id": corp_id, "limit": history}).mappings()
                facts["history"] = [run_row(r) for r in rows][::-1]
            if has_events:
                facts["events"] = event_queue(conn, corp_id)
                rows = conn.execute(text(sql["event_errors"]), {"corp_id": corp_id, "limit": errors}).mappings()
                facts["event_errors"] = [{**r, "last_received_at": parse_db_time(r["last_received_at"])} for r in rows]
            result.append(CorpStatus(corp_id, **facts))
    return result


# -- formatting -------------------------------------------------------------------------------------


def age(moment: datetime | None, now: datetime) -> str:
    """``"3 h 20 min ago"``: coarse on purpose, the page is read at a glance."""
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    return f"{duration(seconds)} ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def run_seconds(run: dict[str, Any]) -> float | None:
    if run.get("started_at") and run.get("finished_at"):
        return (run["finished_at"] - run["started_at"]).total_seconds()
    return None


def _drift(run: dict[str, Any]) -> str:
    """Drift as counts: totals and the top-level numbers of the JSON; lists are shown by length."""
    parts = []
    if run.get("drift_total") is not None:
        parts.append(f"total {run['drift_total']}")
    raw = run.get("drift")
    try:
        detail = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        detail = None
    if isinstance(detail, dict):
        for key, value in detail.items():
            shown = len(value) if isinstance(value, list | dict) else value
            parts.append(f"{key} {shown}")
    return ", ".join(str(p) for p in parts) or "–"


# -- SVG charts -------------------------------------------------------------------------------------

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD = 520, 160, 56, 22, 8


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high == low:
        return (out_low + out_high) / 2
    return out_low + (value - low) * (out_high - out_low) / (high - low)


def _frame(title: str, low: float, high: float, span: tuple[datetime, datetime], body: str) -> str:
    first, last = span
    bottom = HEIGHT - PAD_BOTTOM
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD}" x2="{PAD_LEFT}" y2="{bottom}"/>'
        f'<line class="axis" x1="{PAD_LEFT}" y1="{bottom}" x2="{WIDTH - PAD}" y2="{bottom}"/>'
        f'<text x="{PAD_LEFT - 4}" y="{PAD + 10}" text-anchor="end">{high:,.0f}</text>'
        f'<text x="{PAD_LEFT - 4}" y="{bottom}" text-anchor="end">{low:,.0f}</text>'
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 4}">{first:%Y-%m-%d}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 4}" text-anchor="end">{last:%Y-%m-%d}</text>'
        f"{body}</svg>"
    )


def line_chart(title: str, points: Sequence[tuple[datetime, float]], unit: str) -> str:
    """A time series as a polyline with a dot (and tooltip) per run; empty text without data."""
    if not points:
        return f'<p class="muted">{escape(title)}: no data yet</p>'
    times = [t.timestamp() for t, _ in points]
    values = [v for _, v in points]
    low, high = min(0.0, *values), max(values)
    coords = [
        (
            _scale(t, min(times), max(times), PAD_LEFT + PAD, WIDTH - PAD),
            _scale(v, low, high, HEIGHT - PAD_BOTTOM, PAD),
        )
        for t, v in zip(times, values, strict=True)
    ]
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{moment:%Y-%m-%d %H:%M} UTC: {value:,.0f} {unit}</title>'
        "</circle>"
        for (x, y), (moment, value) in zip(coords, points, strict=True)
    )
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    body = f'<polyline class="series" points="{line}"/>{dots}'
    return _frame(title, low, high, (points[0][0], points[-1][0]), body)


def bar_chart(title: str, bars: Sequence[tuple[datetime, float, str]], unit: str) -> str:
    """One bar per run (``(time, value, status)``), coloured by status."""
    if not bars:
        return f'<p class="muted">{escape(title)}: no data yet</p>'
    high = max(v for _, v, _ in bars)
    slot = (WIDTH - PAD_LEFT - 2 * PAD) / len(bars)
    bottom = HEIGHT - PAD_BOTTOM
    rects = []
    for i, (moment, value, status) in enumerate(bars):
        top = _scale(value, 0, high, bottom, PAD) if high else bottom
        rects.append(
            f'<rect class="bar {escape(status)}" x="{PAD_LEFT + PAD + i * slot:.1f}" y="{top:.1f}" '
            f'width="{max(slot - 2, 1):.1f}" height="{bottom - top:.1f}">'
            f"<title>{moment:%Y-%m-%d %H:%M} UTC: {duration(value)} ({escape(status)})</title></rect>"
        )
    return _frame(title, 0, high, (bars[0][0], bars[-1][0]), "".join(rects))


# -- the page ---------------------------------------------------------------------------------------

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:16px;color:#1b1f24;background:#fff}
h1{font-size:20px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccd;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0 12px}td,th{border:1px solid #dde;padding:3px 8px;text-align:left}
.muted{color:#667}.bad{color:#b42318;font-weight:600}.ok{color:#067647;font-weight:600}
.warn{color:#b54708;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{width:520px;max-width:100%;height:auto}
.chart text{font-size:10px;fill:#667}.axis{stroke:#99a}.series{fill:none;stroke:#2e6bd6;stroke-width:2}
.chart circle{fill:#2e6bd6}.bar{fill:#2e6bd6}.bar.failed,.bar.guard_tripped{fill:#d92d20}
.bar.partial,.bar.stale,.bar.dry_run,.bar.skipped{fill:#f79009}
@media (prefers-color-scheme:dark){body{color:#e6e8eb;background:#111418}td,th{border-color:#334}
.muted,.chart text{color:#99a;fill:#99a}}
"""
CHANGES = ("inserted", "updated", "deleted", "revived")
STATUS_CLASS = {
    "success": "ok",
    "unchanged": "ok",
    "failed": "bad",
    "guard_tripped": "bad",
    "partial": "warn",
    "stale": "warn",
}


def _status(status: str | None) -> str:
    return f'<span class="{STATUS_CLASS.get(status or "", "")}">{escape(status or "–")}</span>'


def _count(value: int | None) -> str:
    return "–" if value is None else str(value)


def _run_link(run: dict[str, Any], run_link: RunLink) -> str:
    url = run_link(run["dag_id"], run["run_id"])
    return f'<a href="{escape(url)}" target="_top">{escape(run["run_id"])}</a>'


def _last_full(corp: CorpStatus, now: datetime, run_link: RunLink) -> str:
    run = corp.last_full
    if run is None:
        return "<p>Last full sync: <b>no full sync yet</b>.</p>"
    finished = run.get("finished_at") or run.get("started_at")
    changes = "".join(
        f"<tr><th>{entity}</th>"
        + "".join(f"<td>{_count(run.get(f'{entity}_{change}'))}</td>" for change in CHANGES)
        + "</tr>"
        for entity in ("departments", "users", "memberships")
    )
    message = f"<p>Reason: {escape(str(run['message']))}</p>" if run.get("message") else ""
    return (
        f"<p>Last full sync: {_status(run['status'])} {age(finished, now)} "
        f"(run {_run_link(run, run_link)}, strategy {escape(str(run.get('strategy') or '–'))}, "
        f"took {duration(run_seconds(run))}, {run.get('api_calls') or 0} API calls, "
        f"{run.get('throttled') or 0} throttled). Seen: {run.get('departments_seen') or 0} departments, "
        f"{run.get('users_seen') or 0} members. Drift: {escape(_drift(run))}.</p>{message}"
        "<table><tr><th></th>" + "".join(f"<th>{change}</th>" for change in CHANGES) + "</tr>"
        f"{changes}</table>"
    )


def _guard(corp: CorpStatus, now: datetime, run_link: RunLink) -> str:
    run = corp.last_guarded
    if run is None:
        return "<p>Mass-deletion guard: <span class='muted'>no snapshot merged yet</span>.</p>"
    if corp.guard_tripped:
        when = run.get("finished_at") or run.get("started_at")
        return (
            f"<p>Mass-deletion guard: <span class='bad'>TRIPPED</span> {age(when, now)} in run "
            f"{_run_link(run, run_link)}: nothing was deleted and full syncs stay stopped until someone "
            f"confirms the deletions (drift: {escape(_drift(run))}).</p>"
        )
    return "<p>Mass-deletion guard: <span class='ok'>armed</span>, the last snapshot passed it.</p>"


def _rights(corp: CorpStatus, now: datetime, run_link: RunLink) -> str:
    """What the last snapshot could not see: degraded (rights shrank), limited (never had them), or full."""
    run = corp.last_snapshot
    rights = Rights.from_row(run)
    if run is None or rights is None:
        return ""
    when = f"{age(run.get('finished_at') or run.get('started_at'), now)} (run {_run_link(run, run_link)})"
    if not rights.withheld:
        return f"<p>Rights: <span class='ok'>full</span>, WeCom sent every field group in the last snapshot {when}.</p>"
    state = "<span class='bad'>DEGRADED</span>" if rights.degraded else "<span class='warn'>limited</span>"
    groups = rights.lost or set(rights.withheld)
    return (
        f"<p>Rights: {state} in the last snapshot {when}: WeCom withholds {escape(describe(rights.withheld))}; "
        f"the stored values are kept. {escape(advice(groups, run.get('strategy'), run.get('strategy_reason')))}.</p>"
    )


def _events(corp: CorpStatus, now: datetime, run_link: RunLink) -> str:
    counts = corp.events.counts
    lag = duration(corp.events.lag_seconds(now)) if counts.get("pending") else "none"
    delta = corp.last_delta
    last_delta = (
        f"last delta run {_status(delta['status'])} {age(delta.get('finished_at') or delta.get('started_at'), now)} "
        f"({_run_link(delta, run_link)})"
        if delta
        else "no delta run yet"
    )
    cells = "".join(
        f"<td class='{'bad' if s == 'dead' and counts.get(s) else ''}'>{counts.get(s, 0)}</td>" for s in EVENT_STATUSES
    )
    head = "".join(f"<th>{s}</th>" for s in EVENT_STATUSES)
    errors = "".join(
        f"<tr><td>{e['event_id']}</td><td>{escape(str(e['change_type']))}</td><td>{_status(e['status'])}</td>"
        f"<td>{e['attempts']}</td><td>{age(e['last_received_at'], now)}</td>"
        f"<td>{escape(str(e['last_error'] or ''))}</td></tr>"
        for e in corp.event_errors
    )
    error_table = (
        "<table><tr><th>event</th><th>change</th><th>status</th><th>attempts</th><th>received</th>"
        f"<th>last error</th></tr>{errors}</table>"
        if errors
        else ""
    )
    return (
        f"<p>Callback events: delta lag (oldest pending) <b>{lag}</b>; {last_delta}.</p>"
        f"<table><tr>{head}</tr><tr>{cells}</tr></table>{error_table}"
    )


def _charts(corp: CorpStatus) -> str:
    snapshots = [r for r in corp.history if r["status"] in SNAPSHOT_STATUSES and r.get("observed_at")]
    members = [(r["observed_at"], float(r["users_seen"])) for r in snapshots if r.get("users_seen") is not None]
    departments = [
        (r["observed_at"], float(r["departments_seen"])) for r in snapshots if r.get("departments_seen") is not None
    ]
    durations = [
        (r["started_at"], seconds, r["status"]) for r in corp.history if (seconds := run_seconds(r)) is not None
    ]
    return (
        '<div class="charts">'
        + line_chart("Members over time", members, "members")
        + line_chart("Departments over time", departments, "departments")
        + bar_chart("Full sync durations", durations, "s")
        + "</div>"
    )


def render_corp(corp: CorpStatus, now: datetime, run_link: RunLink) -> str:
    return (
        f'<section id="corp-{escape(corp.corp_id)}"><h2>{escape(corp.corp_id)}</h2>'
        + _last_full(corp, now, run_link)
        + _guard(corp, now, run_link)
        + _rights(corp, now, run_link)
        + _events(corp, now, run_link)
        + _charts(corp)
        + "</section>"
    )


def render_page(databases: Sequence[DatabaseStatus], *, now: datetime | None = None, run_link: RunLink) -> str:
    """The whole page; ``run_link(dag_id, run_id)`` gives the URL of a run in the Airflow UI."""
    now = now or datetime.now(UTC)
    sections = []
    for database in databases:
        if database.error:
            sections.append(
                f'<p class="bad">Cannot read the target database {escape(database.conn_id)}: '
                f"{escape(database.error)}</p>"
            )
        sections.extend(render_corp(corp, now, run_link) for corp in database.corps)
    if not any(d.corps for d in databases):
        sections.append(
            '<p id="no-runs">WeCom Sync: no runs yet. Trigger the <code>wecom_directory_sync</code> DAG; '
            "this page fills in after its first run.</p>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="60"><title>WeCom Sync</title>'
        f"<style>{STYLE}</style></head><body><h1>WeCom Sync</h1>"
        f'<p class="muted">As of {now:%Y-%m-%d %H:%M:%S} UTC; refreshes every minute.</p>'
        + "".join(sections)
        + "</body></html>"
    )
