"""``DeltaApplier``: apply a corp's stored contact-change callbacks to the directory tables.

One ``apply`` reads top to bottom:

1. take up to ``batch_size`` ready events (pending, or failed with attempts left), oldest first;
2. supersede those older than the latest complete snapshot (it saw the directory after them; for tag
   events, the latest that read every tag's members);
3. group the rest per entity, with the applied events a late one must be replayed with
   (``fold.group_users`` / ``fold.group_departments``);
4. fetch the entities whose events carry only ids (callback URLs set up after 2022-08-15),
   concurrently within the client's rate limits. A refused fetch (48002, 48009, 60011: the
   secret may not read them) is no failure: the events are applied with what they carry and
   every other field keeps its stored value;
5. in one transaction: write the departments, then the members (renames included), then the tags
   (``writer_tags``: update_tag events decided member by member; a tag not known here is fetched
   when allowed, else created from the ids its events carry), mark every event and record the run
   (kind ``delta``) in ``wecom_sync_runs``. An event is applied,
   superseded, or failed with a one-line reason and retried by the next runs, ``dead`` after
   ``max_attempts``. Bad input is held that way too (a department not known here, a NewUserID
   another live member holds, a move making a department cycle): what resolves it may still
   arrive, out of order, within those attempts.

A failure fails only its entity's events, never the batch, and no path deletes a member's row.

With a department scope (``scope``), members and departments that may be entering it are fetched
too, WeCom's department tree is read once when the events name departments the tables do not hold,
and the writers place every entity: leaving the scope is applied (``out_of_scope``), events about
entities outside it end as ``out_of_scope`` with the reason (``wecom.callbacks.scope_placement``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from wecom.api.client import WeComClient
from wecom.callbacks.fetch import Fetcher, fetch_endpoint, waiting_departments
from wecom.callbacks.fold import Event, Fetched, Group, group_departments, group_users
from wecom.callbacks.fold_tags import group_tags
from wecom.callbacks.queue import EventQueue
from wecom.callbacks.scope_placement import ScopeNeeds, scope_needs
from wecom.callbacks.writer import Counts, WriteStep, before
from wecom.callbacks.writer_departments import apply_departments
from wecom.callbacks.writer_tags import apply_tags, unknown_tags
from wecom.callbacks.writer_users import apply_users
from wecom.constants import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_WORKERS
from wecom.directory.pii import KEEP_ALL, PiiPolicy
from wecom.directory.rights import Rights
from wecom.errors import WeComError
from wecom.runs import EventStatus, RunStatus
from wecom.scope import WHOLE_COMPANY, Scope, parents_of
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import changed_tables
from wecom.store.run_records import RunRecord

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 20_000
EVENT_STATUSES = (
    EventStatus.APPLIED,
    EventStatus.SUPERSEDED,
    EventStatus.FAILED,
    EventStatus.DEAD,
    EventStatus.OUT_OF_SCOPE,
)
# Directory table -> the WriteStep counts of its rows.
STEP_COUNTS = {
    "wecom_departments": "departments",
    "wecom_users": "users",
    "wecom_user_departments": "memberships",
    "wecom_tags": "tags",
}
TAG_MEMBER_TABLES = ("wecom_tag_users", "wecom_tag_departments")


@dataclass
class DeltaResult:
    """What one apply did: event outcomes, table changes, API calls, fetches the secret may not make."""

    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_STATUSES, 0))
    users: Counts = field(default_factory=Counts)
    departments: Counts = field(default_factory=Counts)
    memberships: Counts = field(default_factory=Counts)
    api_calls: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    observed_at: datetime | None = None
    # Rows written per directory table (what users, departments and memberships count, and the rest).
    tables: dict[str, Counts] = field(default_factory=dict)
    # The field groups the latest snapshot is degraded in: the tables hold older values there.
    degraded: list[str] = field(default_factory=list)

    def changed_tables(self) -> dict[str, dict[str, int]]:
        """What the apply changed, per table (``wecom.store.plan.changed_tables``)."""
        return changed_tables(self.tables)

    def run_counts(self) -> dict[str, int]:
        counts = {f"users_{k}": v for k, v in vars(self.users).items()}
        counts |= {f"departments_{k}": v for k, v in vars(self.departments).items()}
        counts |= {
            f"memberships_{k}": v for k, v in vars(self.memberships).items() if k not in ("revived", "left_scope")
        }
        tags = vars(self.tables.get("wecom_tags", Counts()))
        counts |= {f"tags_{k}": v for k, v in tags.items() if k != "left_scope"}
        for change in ("inserted", "deleted"):
            members = (getattr(self.tables.get(table, Counts()), change) for table in TAG_MEMBER_TABLES)
            counts[f"tag_members_{change}"] = sum(members)
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": dict(self.events),
            "newly_dead": self.events["dead"],
            **self.run_counts(),
            "api_calls": dict(self.api_calls),
            "refused": dict(self.refused),
        }


class DeltaApplier:
    """Applies a corp's ready callback events to one target database.

    ``client`` completes ids-only events; it may hold a secret other than the full sync's (the
    connection's ``fetch_conn_id``). Without one, ids-only events are applied from what they carry.
    """

    def __init__(
        self,
        engine: Engine,
        client: WeComClient | None = None,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_workers: int = DEFAULT_MAX_WORKERS,
        pii: PiiPolicy = KEEP_ALL,
        scope: Scope = WHOLE_COMPANY,
    ) -> None:
        if max_attempts < 1 or batch_size < 1 or max_workers < 1:
            raise ValueError("max_attempts, batch_size and max_workers must be positive")
        self.engine = engine
        self.client = client
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.max_workers = max_workers
        self.pii = pii
        self.scope = scope
        self.loader = DirectoryLoader(engine)

    def apply(self, run: RunRecord) -> DeltaResult:
        """Apply up to ``batch_size`` ready events of ``run.corp_id`` and record the run (kind ``delta``)."""
        corp_id, result = run.corp_id, DeltaResult()
        with self.engine.connect() as conn:
            queue = EventQueue(conn, corp_id, self.max_attempts)
            batch = queue.ready(self.batch_size)
            if not batch:
                log.info("no callback events of %s to apply; the run row is left as it is", corp_id)
                return result
            complete_at = {kind: queue.complete_snapshot_at(kind) for kind in ("user", "tag")}
            covered = [e for e in batch if _covered(e, complete_at.get(e.entity_type, complete_at["user"]))]
            covered_ids = {e.event_id for e in covered}
            live = [e for e in batch if e.event_id not in covered_ids]
            user_groups = _user_groups(queue, [e for e in live if e.entity_type == "user"])
            department_groups = _department_groups(queue, [e for e in live if e.entity_type == "department"])
            needs = ScopeNeeds() if self.scope.whole else scope_needs(conn, corp_id, user_groups, department_groups)
            tag_groups = _tag_groups(queue, [e for e in live if e.entity_type == "tag"])
            unknown = unknown_tags(conn, corp_id, tag_groups)
            renames = _renames(queue, live, tag_groups)
        fetched = self._fetch(corp_id, user_groups, department_groups, result, needs.entering, tags=unknown)
        tree = self._tree(result) if needs.tree else {}
        with self.engine.begin() as conn:
            step = WriteStep(conn, corp_id, run.run_id, datetime.now(UTC), fetched, self.scope, tree)
            step.outcome.superseded += [e.event_id for e in covered]
            apply_departments(step, department_groups)
            apply_users(step, user_groups, self.pii)
            apply_tags(step, tag_groups, renames)
            self._settle(EventQueue(conn, corp_id, self.max_attempts), step, batch, result)
            last = self.loader.runs.last_snapshot(
                conn, {"corp_id": corp_id, "dag_id": run.dag_id, "run_id": run.run_id}
            )
            result.degraded = sorted(Rights.from_row(last).lost) if last else []
            self.loader.runs.record(
                conn,
                replace(run, kind="delta", api_calls_by_endpoint=result.api_calls),
                status=RunStatus.PARTIAL if step.outcome.failures else RunStatus.SUCCESS,
                observed_at=result.observed_at,
                finished_at=datetime.now(UTC),
                counts=result.run_counts(),
                message=_message(result),
            )
        log.info("applied callbacks of %s: %s", corp_id, result.as_dict())
        return result

    def _settle(self, queue: EventQueue, step: WriteStep, batch: list[Event], result: DeltaResult) -> None:
        """Mark every decided event and copy the step's counts into the result."""
        outcome = step.outcome
        queue.mark("applied", outcome.applied, step.run_id, step.now)
        queue.mark("superseded", outcome.superseded, step.run_id, step.now)
        queue.fail(outcome.failures, step.run_id)
        queue.set_aside(outcome.out_of_scope, step.run_id, step.now)
        failed = {i for ids in outcome.failures.values() for i in ids}
        dying = sum(1 for e in batch if e.event_id in failed and e.attempts + 1 >= self.max_attempts)
        result.events = {
            "applied": len(set(outcome.applied)),
            "superseded": len(set(outcome.superseded)),
            "failed": len(failed) - dying,
            "dead": dying,
            "out_of_scope": len({i for ids in outcome.out_of_scope.values() for i in ids}),
        }
        result.users, result.departments, result.memberships = step.users, step.departments, step.memberships
        result.tables = dict(step.written) | {table: getattr(step, name) for table, name in STEP_COUNTS.items()}
        applied = set(outcome.applied)
        result.observed_at = max((e.create_time for e in batch if e.event_id in applied), default=None)

    def _tree(self, result: DeltaResult) -> dict[int, int]:
        """WeCom's department tree (id -> parent), to place departments the tables do not hold; empty
        without a client or when the secret may not list it."""
        if self.client is None:
            return {}
        try:
            return parents_of(self.client.department_simplelist())
        except WeComError as error:
            log.warning("department/simplelist failed (errcode %s): unknown departments stay unplaced", error.errcode)
            return {}
        finally:
            result.api_calls = self.client.api_calls

    def _fetch(
        self,
        corp_id: str,
        user_groups: list[Group],
        department_groups: list[Group],
        result: DeltaResult,
        entering: Sequence[tuple[str, str]] = (),
        *,
        tags: Sequence[str] = (),
    ) -> dict[tuple[str, str], Fetched]:
        """Complete ids-only events (``wecom.callbacks.fetch``), the entities that may be entering the
        department scope and the ``tags`` not known here: concurrently, by department where many
        members wait, within the client's rate limits."""
        if self.client is None:
            waiting = len(waiting_departments(user_groups)) + len(tags)
            waiting += sum(1 for g in department_groups if any(e.needs_fetch() for e in g.events))
            if waiting:
                log.info("%d ids-only entities applied from what their events carry (no fetch client)", waiting)
            return {}
        fetcher = Fetcher(self.client, self.max_workers)
        answers = fetcher.fetch(self.engine, corp_id, user_groups, department_groups, entering, tags=tags)
        result.api_calls = self.client.api_calls
        for endpoint, errcode in fetcher.refused.items():
            result.refused[endpoint] = sum(
                1 for (k, _), a in answers.items() if a is None and fetch_endpoint(k) == endpoint
            )
            log.warning(
                "%s answers errcode %s for this secret: %d ids-only entities applied from what their events "
                "carry, their other fields kept as stored. To complete them, set fetch_conn_id in the wecom "
                "connection to a connection whose secret may read them (the contact-sync secret from a trusted "
                "IP added before 2022-08-15, or an app with contacts access and the entities in its visible scope)",
                endpoint,
                errcode,
                result.refused[endpoint],
            )
        return {item: answer for item, answer in answers.items() if answer is not None}


def _covered(event: Event, snapshot_at: datetime | None) -> bool:
    """Whether a complete snapshot (for tag events: one that read every tag) already saw this event's effect."""
    return snapshot_at is not None and before(event.create_time, snapshot_at)


def _user_groups(queue: EventQueue, ready: list[Event]) -> list[Group]:
    """Ready member events plus the applied ones to replay, grouped under the member's latest userid."""
    if not ready:
        return []
    since = min(e.create_time for e in ready)
    renames = [e for e in ready if e.renames] + queue.applied_renames(since)
    # Grouped with the renames, each member's group names every userid it had: replay their events.
    chains = group_users(ready + renames, renames)
    keys = {e.entity_id for g in chains for e in g.events} | {g.key for g in chains}
    return group_users(ready + queue.applied("user", keys, since), renames)


def _department_groups(queue: EventQueue, ready: list[Event]) -> list[Group]:
    if not ready:
        return []
    since = min(e.create_time for e in ready)
    return group_departments(ready + queue.applied("department", {e.entity_id for e in ready}, since))


def _tag_groups(queue: EventQueue, ready: list[Event]) -> list[Group]:
    """Ready tag events with the tag's events applied since the oldest of them: a late event is decided
    together with the later ones that already named the same members."""
    if not ready:
        return []
    since = min(e.create_time for e in ready)
    return group_tags(ready + queue.applied("tag", {e.entity_id for e in ready}, since))


def _renames(queue: EventQueue, live: list[Event], tag_groups: list[Group]) -> list[Event]:
    """The userid changes that may follow a tag event: a tag names a member by the userid of its time."""
    if not tag_groups:
        return []
    since = min(e.create_time for g in tag_groups for e in g.events)
    return [e for e in live if e.renames] + queue.applied_renames(since)


def _message(result: DeltaResult) -> str:
    events = ", ".join(f"{n} {status}" for status, n in result.events.items()) + " events"
    refused = [f"{endpoint} refused ({n} applied from their ids)" for endpoint, n in result.refused.items()]
    return "; ".join([events, *refused])
