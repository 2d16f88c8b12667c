"""What the status page knows about each company: plain data, read from a target database or built in tests.

A run is a ``wecom_sync_runs`` row as a dict (aware datetimes), an event a
``wecom_callback_events`` row as a dict: the page shows optional columns that
newer schemas add where they exist, so rows stay dicts rather than a type
that would have to follow every schema change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from wecom.runs import RunStatus

Row = dict[str, Any]


class ConfiguredCompany(Protocol):
    """The part of a ``wecom_companies`` entry (``wecom.companies.Company``) the page uses."""

    @property
    def name(self) -> str: ...

    @property
    def wecom_conn_id(self) -> str: ...

    @property
    def dag_id(self) -> str: ...


@dataclass(frozen=True)
class EventQueueStatus:
    """The callback events of one company by status, and when the oldest pending one arrived."""

    counts: dict[str, int] = field(default_factory=dict)
    oldest_pending_at: datetime | None = None

    def lag_seconds(self, now: datetime) -> float:
        """How long the oldest pending event has waited; 0 with nothing pending."""
        return max(0.0, (now - self.oldest_pending_at).total_seconds()) if self.oldest_pending_at else 0.0


@dataclass(frozen=True)
class CorpStatus:
    """One company as the target database knows it.

    ``names`` are the ``wecom_companies`` names that wrote this corp's rows (a
    DAG id carries its company's name), so the page can say which company a
    corp id is.
    """

    corp_id: str
    names: tuple[str, ...] = ()
    last_full: Row | None = None
    last_delta: Row | None = None
    last_guarded: Row | None = None
    last_snapshot: Row | None = None
    history: list[Row] = field(default_factory=list)  # full runs, oldest first
    events: EventQueueStatus = field(default_factory=EventQueueStatus)
    dead_events: list[Row] = field(default_factory=list)  # newest first
    failed_events: list[Row] = field(default_factory=list)  # newest first
    out_of_scope_events: list[Row] = field(default_factory=list)  # newest first: set aside, with why

    @property
    def guard_tripped(self) -> bool:
        """The newest snapshot run was stopped by the guard: full syncs stay blocked until resolved."""
        return bool(self.last_guarded and self.last_guarded["status"] == RunStatus.GUARD_TRIPPED)


@dataclass(frozen=True)
class WaitingCompany:
    """A configured company whose target database holds nothing of it yet."""

    name: str
    dag_id: str


@dataclass(frozen=True)
class DatabaseStatus:
    """What one target database (named by its Airflow connection) holds, or why it could not be read."""

    conn_id: str
    corps: list[CorpStatus] = field(default_factory=list)
    waiting: list[WaitingCompany] = field(default_factory=list)
    error: str | None = None


def airflow_run_url(base: str, dag_id: str, run_id: str) -> str:
    """A DAG run's page in the Airflow UI; ``base`` is ``[api] base_url`` or just its path."""
    return f"{base.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def run_time(run: Row) -> datetime | None:
    """When a run ended (or started, while it has not ended)."""
    return run.get("finished_at") or run.get("started_at")


def run_seconds(run: Row) -> float | None:
    if run.get("started_at") and run.get("finished_at"):
        return (run["finished_at"] - run["started_at"]).total_seconds()
    return None
