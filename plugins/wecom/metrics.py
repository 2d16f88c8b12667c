"""Metric names and what to emit for a sync run or the callback queue, all under the prefix ``wecom.``.

The backend is passed in: the task layer hands over Airflow's ``Stats``
(StatsD, Datadog or OpenTelemetry, whatever Airflow is configured with), so
this module stays free of Airflow and the names are documented in one place
(docs/operations.md lists them). Statuses, entities and endpoints are part
of the name because plain StatsD drops tags; the company travels as the
``corp_id`` tag, which OpenTelemetry, Datadog and StatsD with
``statsd_influxdb_enabled`` keep.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any, Protocol

from wecom.directory.rights import FIELD_GROUPS, Rights
from wecom.runs import CHANGES, ENTITIES, QUEUE_STATUSES, SNAPSHOT_STATUSES
from wecom.status import EventQueueStatus

PREFIX = "wecom"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


class StatsBackend(Protocol):
    """The part of Airflow's ``Stats`` this module uses, as it calls it: name and value by position."""

    def incr(self, _stat: str, _count: int = 1, /, *, tags: dict[str, Any] | None = None) -> None: ...

    def gauge(self, _stat: str, _value: float, /, *, tags: dict[str, Any] | None = None) -> None: ...

    def timing(self, _stat: str, _dt: float | timedelta, /, *, tags: dict[str, Any] | None = None) -> None: ...


def name(*parts: str) -> str:
    """``wecom.<part>.<part>``, each part reduced to letters, digits and ``_`` (``user/get`` -> ``user_get``)."""
    return ".".join((PREFIX, *(_UNSAFE.sub("_", p).strip("_") for p in parts)))


def _endpoint_calls(row: dict[str, Any]) -> dict[str, int]:
    raw = row.get("api_calls_by_endpoint")
    calls = json.loads(raw) if isinstance(raw, str) and raw else raw
    return {str(k): int(v) for k, v in (calls or {}).items()}


def emit_run(stats: StatsBackend, row: dict[str, Any]) -> None:
    """One ``wecom_sync_runs`` row (as ``DirectoryLoader.get_run`` returns it) as metrics."""
    tags = {"corp_id": row["corp_id"], "kind": row["kind"]}
    stats.incr(name("sync", "runs", row["status"]), tags=tags)
    if row.get("started_at") and row.get("finished_at"):
        stats.timing(name("sync", "duration", row["kind"]), row["finished_at"] - row["started_at"], tags=tags)
    for entity, column in (("departments", "departments_seen"), ("members", "users_seen"), ("tags", "tags_seen")):
        if row.get(column) is not None:
            stats.gauge(name("directory", entity), row[column], tags=tags)
    for entity in ENTITIES:
        for change in CHANGES:
            if row.get(f"{entity}_{change}"):
                stats.incr(name("sync", entity, change), row[f"{entity}_{change}"], tags=tags)
    calls = _endpoint_calls(row)
    if calls:
        stats.incr(name("api", "calls"), sum(calls.values()), tags=tags)
    for endpoint, count in calls.items():
        stats.incr(name("api", "calls", endpoint), count, tags=tags)
    if row.get("throttled"):
        stats.incr(name("api", "throttled"), row["throttled"], tags=tags)
    if row["kind"] == "full" and row["status"] in SNAPSHOT_STATUSES and (rights := Rights.from_row(row)):
        for group in FIELD_GROUPS:
            stats.gauge(name("sync", "withheld", group), rights.withheld.get(group, 0), tags=tags)
        stats.gauge(name("sync", "degraded"), int(rights.degraded), tags=tags)


def emit_queue(stats: StatsBackend, corp_id: str, queue: EventQueueStatus, lag_seconds: float) -> None:
    """The callback queue of one company: gauges, so each emission replaces the last."""
    tags = {"corp_id": corp_id}
    for status in QUEUE_STATUSES:
        stats.gauge(name("callback", status), queue.counts.get(status, 0), tags=tags)
    stats.gauge(name("callback", "lag_seconds"), lag_seconds, tags=tags)
