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


class Change(StrEnum):
    """What a run did to a row: the plan's, the run row's and the metrics' change kinds."""

    INSERTED = "inserted"
    UPDATED = "updated"
    DELETED = "deleted"
    REVIVED = "revived"
    LEFT_SCOPE = "left_scope"  # soft-deleted as out of the company's department scope, not gone from WeCom


CHANGES = tuple(Change)
# The entities a run row counts changes of (columns <entity>_<change>); memberships are never revived and
# never leave the scope on their own (they end, with their member or department); tags never leave the scope
# (only their memberships are scoped); tag memberships (members and departments in tags) only come and go.
ENTITIES = ("departments", "users", "memberships", "tags", "tag_members")


class EventStatus(StrEnum):
    """Where a stored callback event stands in ``wecom_callback_events``."""

    PENDING = "pending"  # stored, waiting to be applied
    FAILED = "failed"  # an apply failed; retried until the attempts run out
    DEAD = "dead"  # gave up, with the reason in last_error
    APPLIED = "applied"
    SUPERSEDED = "superseded"  # a newer snapshot or state already covers it
    IGNORED = "ignored"  # a change the directory does not keep (unknown change types and events)
    # about a member or department outside the company's department scope: recorded, not applied (why in last_error)
    OUT_OF_SCOPE = "out_of_scope"


# Events the apply DAG still has to handle, and the queue states worth a gauge.
READY_STATUSES = frozenset({EventStatus.PENDING, EventStatus.FAILED})
QUEUE_STATUSES = (EventStatus.PENDING, EventStatus.FAILED, EventStatus.DEAD)
