"""What the page says about a company, decided in Python so the template only lays it out.

Each ``CorpView`` answers the on-call questions in order: is this company
healthy, when was the last good sync and how old is it, what failed and
why, what WeCom withholds, which callbacks were given up on, and how the
directory and the runs evolved (the charts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from wecom.directory.rights import Rights, advice, describe
from wecom.runs import CHANGES, ENTITIES, SNAPSHOT_STATUSES, EventStatus, RunStatus
from wecom.status.charts import TONES, Chart, TimeAxis, bar_chart, line_chart
from wecom.status.model import CorpStatus, Row, run_seconds, run_time

RECENT_RUNS = 6
EVENT_STATUSES = tuple(EventStatus)
_FAILURES = frozenset({RunStatus.FAILED, RunStatus.GUARD_TRIPPED})
_HEALTH_LABELS = {"bad": "FAILING", "warn": "ATTENTION", "muted": "NO SYNC YET", "ok": "OK"}  # worst first


def duration(seconds: float | None) -> str:
    """``"3 h 20 min"``: coarse on purpose, the page is read at a glance."""
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


def age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{duration(max(0.0, (now - moment).total_seconds()))} ago"


def when(moment: datetime | None) -> str:
    return "–" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def ended(run: Row | None) -> datetime | None:
    return run_time(run) if run else None


def number(value: int | None) -> str:
    """``1,238``; a dash for what a run did not count (a failed run saw nothing, it did not see zero)."""
    return "–" if value is None else f"{value:,}"


def tone(status: str | None) -> str:
    return TONES.get(status or "", "")


def drift(run: Row) -> str:
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


@dataclass(frozen=True)
class Health:
    tone: str
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        return _HEALTH_LABELS[self.tone]

    @property
    def rank(self) -> int:
        """0 for the worst: the page lists failing companies first."""
        return list(_HEALTH_LABELS).index(self.tone)


@dataclass(frozen=True)
class RightsView:
    """The last snapshot's rights: full, limited (never had them) or DEGRADED (lost them), with advice."""

    tone: str
    label: str
    withheld: str
    advice: str


@dataclass(frozen=True)
class CorpView:
    corp: CorpStatus
    health: Health
    rights: RightsView | None
    recent_runs: list[Row]
    changes: list[tuple[str, list[int | None]]]  # the last good sync's changes per entity
    charts: list[Chart]

    @property
    def name(self) -> str:
        return ", ".join(self.corp.names) or "(not in wecom_companies)"

    @property
    def anchor(self) -> str:
        return f"corp-{self.corp.corp_id}"


def health(corp: CorpStatus, now: datetime) -> Health:
    """Failing when the last full sync loaded nothing; attention for what needs a look but still syncs."""
    last, snapshot = corp.last_full, corp.last_snapshot
    if last is None and not corp.events.counts:
        return Health("muted", ("no full sync yet",))
    bad, warn = [], []
    if last is not None and last["status"] in _FAILURES:
        bad.append(f"last full sync {last['status'].replace('_', ' ')} {age(run_time(last), now)}")
    if corp.guard_tripped and (last is None or last["status"] != RunStatus.GUARD_TRIPPED):
        bad.append("deletion guard tripped: full syncs wait for a confirmation")
    if last is None:
        warn.append("no full sync yet")
    elif snapshot is None:
        bad.append("never loaded a snapshot")
    elif snapshot["status"] == RunStatus.PARTIAL:
        warn.append("last snapshot was partial")
    rights = Rights.from_row(snapshot)
    if rights and rights.degraded:
        warn.append("rights degraded")
    for status, what in (("dead", "dead-letter"), ("failed", "failed")):
        if n := corp.events.counts.get(status):
            warn.append(f"{n} {what} callback event{'s' * (n != 1)}")
    tone_ = "bad" if bad else "warn" if warn else "ok"
    return Health(tone_, tuple(bad + warn) or ("last full sync loaded",))


def rights_view(run: Row | None) -> RightsView | None:
    """DEGRADED with advice for the groups lost, limited for the groups WeCom sends (almost) no record of,
    full otherwise: records that lack a group themselves (a member without contact details) are counted
    but call for nothing."""
    rights = Rights.from_row(run)
    if run is None or rights is None:
        return None
    groups = rights.lost or rights.unreadable
    if not groups:
        note = f" (not in {describe(rights.withheld)}: records that lack them themselves)" if rights.withheld else ""
        return RightsView("ok", "full", "", f"WeCom sent every field group{note}")
    label, tone_ = ("DEGRADED", "bad") if rights.degraded else ("limited", "warn")
    return RightsView(
        tone_, label, describe(rights.withheld), advice(groups, run.get("strategy"), run.get("strategy_reason"))
    )


def charts(history: Sequence[Row]) -> list[Chart]:
    """Members and departments per loaded snapshot (failed runs marked, not drawn as zeros), and the
    duration of every full run, on one time axis."""
    snapshots = [r for r in history if r["status"] in SNAPSHOT_STATUSES and r.get("observed_at")]
    failures = [
        (t, r.get("message") or r["status"]) for r in history if r["status"] in _FAILURES and (t := run_time(r))
    ]

    def series(column: str) -> list[tuple[datetime, float]]:
        return [(r["observed_at"], float(r[column])) for r in snapshots if r.get(column) is not None]

    durations = [
        (r["started_at"], seconds, r["status"], f"{duration(seconds)}, {r['status']}")
        for r in history
        if (seconds := run_seconds(r)) is not None
    ]
    times = [r["observed_at"] for r in snapshots] + [t for t, _ in failures] + [t for t, *_ in durations]
    axis = TimeAxis.spanning(times) if times else None
    return [
        line_chart("Members", "members", series("users_seen"), failures, axis),
        line_chart("Departments", "departments", series("departments_seen"), failures, axis),
        bar_chart("Full sync duration", durations, axis),
    ]


def corp_view(corp: CorpStatus, now: datetime) -> CorpView:
    snapshot = corp.last_snapshot
    changes = [(e, [snapshot.get(f"{e}_{c}") for c in CHANGES]) for e in ENTITIES] if snapshot else []
    return CorpView(
        corp,
        health(corp, now),
        rights_view(snapshot),
        corp.history[::-1][:RECENT_RUNS],
        changes,
        charts(corp.history),
    )
