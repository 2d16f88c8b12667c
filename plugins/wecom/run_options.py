"""What one run of the full sync may be asked to do, and whether it needs to extract at all.

WeCom only serves the present, so a run whose interval a recent snapshot
already covers (a backfill, catch-up after an outage, a second manual
trigger) is skipped instead of spending API quota, unless forced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from wecom.errors import RunConfError


@dataclass(frozen=True)
class RunConf:
    """The keys a user may pass with ``airflow dags trigger --conf`` (all default to false)."""

    dry_run: bool = False
    force: bool = False
    allow_mass_delete: bool = False

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any] | None) -> RunConf:
        allowed = sorted(f.name for f in fields(cls))
        conf = dict(conf or {})
        unknown = sorted(set(conf) - set(allowed))
        if unknown:
            raise RunConfError(
                f"unknown run conf key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(allowed)}"
            )
        for key, value in conf.items():
            if not isinstance(value, bool):
                raise RunConfError(f"run conf {key!r} must be true or false, got {value!r}")
        return cls(**conf)


def covering_snapshot(latest: datetime | None, interval_end: datetime, now: datetime, freshness: timedelta) -> bool:
    """Whether the snapshot observed at ``latest`` makes a run for ``interval_end`` pointless.

    It does when it was observed after the interval ended (the run could only
    fetch the same present), or within the freshness window of now.
    """
    return latest is not None and latest >= min(interval_end, now - freshness)
