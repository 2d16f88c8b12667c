"""The run vocabulary in one place: what a ``wecom_sync_runs`` row's ``status`` can say.

A leaf module (standard library only) that the loader, the status page, the
metrics and the DAG glue share, so a status is spelled once. ``StrEnum``
members equal their text, so rows read back from the database compare as is.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    SUCCESS = "success"  # a complete snapshot loaded
    PARTIAL = "partial"  # an incomplete snapshot loaded: nothing deleted
    UNCHANGED = "unchanged"  # WeCom repeated the last snapshot: nothing transformed or loaded
    FAILED = "failed"
    STALE = "stale"  # an older snapshot that finished after a newer one: nothing changed
    SKIPPED = "skipped"  # a fresh snapshot already covered the interval
    DRY_RUN = "dry_run"  # plan recorded, nothing changed
    GUARD_TRIPPED = "guard_tripped"  # the mass-deletion guard stopped the load


# Runs that recorded a snapshot: what freshness, the unchanged check, rights and charts compare with.
SNAPSHOT_STATUSES = frozenset({RunStatus.SUCCESS, RunStatus.PARTIAL, RunStatus.UNCHANGED})
