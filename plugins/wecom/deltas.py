"""Apply stored contact-change callbacks to the directory tables.

Events of one entity are folded in CreateTime order (ties: creation, change,
deletion, then arrival) into the entity's state as WeCom holds it after each
of them. The last state is written to the current tables, every state to the
history, with the same normalization and row hashes as a full sync
(``wecom.transform``), so a later snapshot finds nothing to rewrite.

Ordering rules, all by observation time rather than arrival:

- Every event of a member or department sets fields (last writer wins), so a
  late event is replayed together with the already applied newer events of the
  same entity, and the result is what in-order arrival would have produced.
- An event older than the latest complete snapshot is ``superseded``: the
  snapshot saw the directory after it. An entity whose current row was
  observed after every event being folded (a newer partial snapshot) is left
  alone, its events ``superseded`` too. CreateTime has whole seconds, so only
  an event whose second ended before the observation counts as older; one in
  the same second is applied, at the observation's time.
- Events that carry only ids (callback URLs set up after 2022-08-15) are
  completed by fetching the entity, concurrently within the client's rate
  limiter; the answer is WeCom's present state, newer than every event folded
  with it. 60111/60123/60003 mean the entity is gone: it is soft-deleted.
- A failure (a fetch that keeps failing, a malformed payload) fails only that
  entity's events: ``failed`` with ``attempts`` + 1 and a message without
  secrets or member data, ``dead`` after ``max_attempts``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text

from wecom.client import WeComClient
from wecom.errors import WeComError, WeComNotFoundError
from wecom.loader import DirectoryLoader, RunRecord
from wecom.pii import KEEP_ALL, PII_FIELDS, PiiPolicy
from wecom.sql import db_time, parse_db_time, read_named_statements
from wecom.transform import (
    TABLE_COLUMNS,
    department_leaders_from_members,
    transform_departments,
    transform_users,
)

log = logging.getLogger("wecom.deltas")

EVENTS_SQL = "deltas/events.sql"
USERS_SQL = "deltas/users.sql"
DEPARTMENTS_SQL = "deltas/departments.sql"
RENAME_SQL = "deltas/rename_user.sql"
HISTORY_SQL = "deltas/history.sql"

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BATCH_SIZE = 20_000
DEFAULT_MAX_WORKERS = 16
CREATE_TIME_RESOLUTION = timedelta(seconds=1)
# Bound parameters per IN list: far below SQLite's and PostgreSQL's limits.
_CHUNK = 500

# change_contact tag -> user/get field; lists are comma-separated in events.
USER_EVENT_FIELDS: dict[str, str] = {
    "Name": "name",
    "Department": "department",
    "MainDepartment": "main_department",
    "IsLeaderInDept": "is_leader_in_dept",
    "DirectLeader": "direct_leader",
    "Position": "position",
    "Mobile": "mobile",
    "Gender": "gender",
    "Email": "email",
    "BizMail": "biz_mail",
    "Status": "status",
    "Avatar": "avatar",
    "Alias": "alias",
    "Telephone": "telephone",
    "Address": "address",
    "ExtAttr": "extattr",
}
PARTY_EVENT_FIELDS: dict[str, str] = {"Name": "name", "ParentId": "parentid", "Order": "order"}
# What an ids-only member event carries; a member event with nothing else needs a fetch.
_ID_TAGS = frozenset({"UserID", "NewUserID", "Department"})
# users table column -> user/get field, to turn a stored row back into a payload.
_USER_COLUMN_FIELDS: dict[str, str] = {
    "name": "name",
    "alias": "alias",
    "position": "position",
    "gender": "gender",
    "mobile": "mobile",
    "email": "email",
    "biz_mail": "biz_mail",
    "telephone": "telephone",
    "address": "address",
    "status": "status",
    "main_department_id": "main_department",
    "avatar_url": "avatar",
    "open_userid": "open_userid",
    "external_position": "external_position",
}
_CHANGE_RANK = {"create": 0, "update": 1, "delete": 2}
_HISTORY_KEYS = {"user": ("userid",), "membership": ("userid", "department_id"), "department": ("department_id",)}
_USER_COLUMNS = [c for c in TABLE_COLUMNS["wecom_users"] if c != "corp_id"]
_DEPARTMENT_COLUMNS = [c for c in TABLE_COLUMNS["wecom_departments"] if c != "corp_id"]
_MEMBERSHIP_COLUMNS = [c for c in TABLE_COLUMNS["wecom_user_departments"] if c not in ("corp_id", "userid")]


@dataclass(frozen=True)
class Event:
    """One stored callback, as the fold needs it."""

    event_id: int
    status: str
    attempts: int
    create_time: datetime
    change_type: str
    entity_type: str
    entity_id: str
    new_entity_id: str | None
    payload: dict[str, Any]

    @property
    def order_key(self) -> tuple[datetime, int, int]:
        """CreateTime, then within its second creation before change before deletion (WeCom retries and
        reorders deliveries, so arrival alone cannot order one second's events), then arrival."""
        return self.create_time, _CHANGE_RANK.get(self.change_type.split("_")[0], 1), self.event_id

    @property
    def ready(self) -> bool:
        return self.status in ("pending", "failed")

    def needs_fetch(self) -> bool:
        """Whether the event lacks the entity's fields (ids-only form) and WeCom must be asked."""
        if self.change_type in ("create_user", "update_user"):
            carries_fields = bool(set(self.payload) & (set(USER_EVENT_FIELDS) - _ID_TAGS))
            # A full-form pure rename carries only the two userids; the ids-only form adds Department.
            pure_rename = "NewUserID" in self.payload and "Department" not in self.payload
            return not carries_fields and not pure_rename
        return self.change_type == "create_party" and "Name" not in self.payload


@dataclass
class Gone:
    """A fetch answered that the entity no longer exists."""


@dataclass
class FetchFailed:
    """A fetch failed for another reason; the message is safe to store."""

    message: str


Fetched = dict[str, Any] | Gone | FetchFailed


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    revived: int = 0


@dataclass
class DeltaResult:
    """What one apply did: event outcomes, table changes, API calls."""

    events: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("applied", "superseded", "failed", "dead"), 0)
    )
    users: Counts = field(default_factory=Counts)
    departments: Counts = field(default_factory=Counts)
    memberships: Counts = field(default_factory=Counts)
    api_calls: dict[str, int] = field(default_factory=dict)
    observed_at: datetime | None = None

    def run_counts(self) -> dict[str, int]:
        counts = {f"users_{k}": v for k, v in vars(self.users).items()}
        counts |= {f"departments_{k}": v for k, v in vars(self.departments).items()}
        counts |= {f"memberships_{k}": v for k, v in vars(self.memberships).items() if k != "revived"}
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": dict(self.events),
            "newly_dead": self.events["dead"],
            **self.run_counts(),
            "api_calls": dict(self.api_calls),
        }


@dataclass
class _Group:
    """The events of one entity (a member under its latest userid, or a department)."""

    key: str
    events: list[Event]

    @property
    def stamp(self) -> datetime:
        return max(e.create_time for e in self.events)

    @property
    def ready(self) -> list[Event]:
        return [e for e in self.events if e.ready]


@dataclass
class _Pass:
    """One apply's write transaction and what it decided so far."""

    conn: Connection
    corp_id: str
    run_id: str
    fetched: Mapping[tuple[str, str], Fetched]
    result: DeltaResult
    outcome: dict[str, list[int]]
    failures: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    # History statements by version level, then statement name: executed in bulk, level by level.
    history: dict[int, dict[str, list[dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )


class EntityError(ValueError):
    """An entity's events cannot be applied; the message names no member data."""


# --- reading events ------------------------------------------------------------------------------


def _event(row: Mapping[str, Any]) -> Event:
    return Event(
        event_id=int(row["event_id"]),
        status=row["status"],
        attempts=int(row["attempts"]),
        create_time=parse_db_time(row["create_time"]),
        change_type=row["change_type"],
        entity_type=row["entity_type"],
        entity_id=row["entity_id"],
        new_entity_id=row["new_entity_id"],
        payload=json.loads(row["payload"]),
    )


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


def _expanding(sql: str, *names: str):
    return text(sql).bindparams(*(bindparam(name, expanding=True) for name in names))


# --- folding events into states ------------------------------------------------------------------


def _split(value: Any) -> list[str]:
    if not isinstance(value, str):
        raise EntityError("a list field is not text")
    return [part.strip() for part in value.split(",") if part.strip()]


def _int_list(value: Any, what: str) -> list[int]:
    try:
        return [int(part) for part in _split(value)]
    except ValueError:
        raise EntityError(f"{what} holds a non-numeric entry") from None


def _extattr(value: Any) -> dict[str, Any]:
    """ExtAttr as events carry it (``Item`` list) -> user/get's ``{"attrs": [...]}``."""
    items = value.get("Item", []) if isinstance(value, dict) else []
    attrs = []
    for item in items:
        kind = int(item.get("Type") or 0)
        attr: dict[str, Any] = {"type": kind, "name": item.get("Name", "")}
        if kind == 1:
            web = item.get("Web") or {}
            attr["web"] = {"url": web.get("Url", ""), "title": web.get("Title", "")}
        else:
            attr["text"] = {"value": (item.get("Text") or {}).get("Value", "")}
        attrs.append(attr)
    return {"attrs": attrs}


def _realign(state: dict[str, Any], departments: list[int]) -> None:
    """A new department list keeps each department's order and leader flag; new ones have none."""
    old = state.get("department") or []
    for aligned in ("order", "is_leader_in_dept"):
        values = dict(zip(old, state.get(aligned) or [None] * len(old), strict=False))
        state[aligned] = [values.get(d) for d in departments]
    state["department"] = departments


def _apply_user_fields(state: dict[str, Any], payload: Mapping[str, Any]) -> bool:
    """Set the member fields an event carries; True when it said which departments the member leads."""
    said_leaders = False
    if "Department" in payload:
        _realign(state, _int_list(payload["Department"], "Department"))
        said_leaders = True
    for tag, name in USER_EVENT_FIELDS.items():
        if tag not in payload or tag == "Department":
            continue
        value = payload[tag]
        if tag == "IsLeaderInDept":
            flags = _int_list(value, tag)
            if len(flags) != len(state.get("department") or []):
                raise EntityError("IsLeaderInDept does not align with the member's departments")
            state[name] = flags
            said_leaders = True
        elif tag == "DirectLeader":
            state[name] = _split(value)
        elif tag == "ExtAttr":
            state[name] = _extattr(value)
        else:
            state[name] = value
    return said_leaders


def fold_user(
    key: str, base: dict[str, Any] | None, deleted: bool, events: Sequence[Event], fetched: Fetched | None
) -> tuple[list[tuple[datetime, dict[str, Any] | None]], bool]:
    """The member's versions after each event time (user/get-shaped, None while deleted), and whether
    its led departments are known. ``base`` is the stored state (kept when deleted, so that a late
    event replayed before a delete finds the content it changed). A fetched answer is the present:
    the only version, at the time of the last event."""
    if isinstance(fetched, Gone):
        return [(events[-1].create_time, None)], True
    if isinstance(fetched, dict):
        return [(events[-1].create_time, dict(fetched) | {"userid": key})], "is_leader_in_dept" in fetched
    state, alive, said_leaders = base, base is not None and not deleted, False
    versions: list[tuple[datetime, dict[str, Any] | None]] = []
    for event in events:
        if event.change_type == "delete_user":
            alive, said_leaders = False, True
        else:
            state = {} if event.change_type == "create_user" or state is None else dict(state)
            said_leaders |= _apply_user_fields(state, event.payload)
            state["userid"] = key
            alive = True
        if versions and versions[-1][0] == event.create_time:
            versions.pop()
        versions.append((event.create_time, state if alive else None))
    return versions, said_leaders


def fold_department(
    base: dict[str, Any] | None, deleted: bool, events: Iterable[Event], fetched: Fetched | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the department/get-shaped state after the events or None when deleted, its last known content)."""
    state, alive = base, base is not None and not deleted
    for event in events:
        if event.change_type == "delete_party":
            alive = False
            continue
        state = {} if event.change_type == "create_party" or state is None else dict(state)
        state |= {name: event.payload[tag] for tag, name in PARTY_EVENT_FIELDS.items() if tag in event.payload}
        alive = True
    if isinstance(fetched, Gone):
        alive = False
    elif isinstance(fetched, dict):
        state, alive = dict(fetched), True
    if state is None:
        return None, None
    try:
        state = state | {"parentid": int(state["parentid"])}
        state["order"] = None if state.get("order") in (None, "") else int(state["order"])
    except (KeyError, TypeError, ValueError):
        raise EntityError("department has no usable ParentId/Order (not yet known here)") from None
    return (state if alive else None), state


# --- the applier ---------------------------------------------------------------------------------


class DeltaApplier:
    """Applies a corp's ready callback events to one target database."""

    def __init__(
        self,
        engine: Engine,
        client: WeComClient | None = None,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_workers: int = DEFAULT_MAX_WORKERS,
        pii: PiiPolicy = KEEP_ALL,
    ) -> None:
        if max_attempts < 1 or batch_size < 1 or max_workers < 1:
            raise ValueError("max_attempts, batch_size and max_workers must be positive")
        self.engine = engine
        self.dialect = engine.dialect.name
        self.client = client
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.max_workers = max_workers
        self.pii = pii
        self.loader = DirectoryLoader(engine)
        self.sql = {
            name: read_named_statements(path, self.dialect)
            for name, path in (
                ("events", EVENTS_SQL),
                ("users", USERS_SQL),
                ("departments", DEPARTMENTS_SQL),
                ("rename", RENAME_SQL),
                ("history", HISTORY_SQL),
            )
        }

    def _t(self, value: datetime | None) -> Any:
        return db_time(value, self.dialect)

    def count_ready(self, corp_id: str) -> int:
        """Events waiting to be applied (pending, or failed with attempts left)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    text(self.sql["events"]["count_ready"]), {"corp_id": corp_id, "max_attempts": self.max_attempts}
                ).scalar_one()
            )

    def apply(self, run: RunRecord) -> DeltaResult:
        """Apply up to ``batch_size`` ready events of ``run.corp_id`` and record the run (kind ``delta``)."""
        corp_id = run.corp_id
        result = DeltaResult()
        with self.engine.connect() as conn:
            params = {"corp_id": corp_id, "max_attempts": self.max_attempts, "limit": self.batch_size}
            batch = [_event(r) for r in conn.execute(text(self.sql["events"]["select_batch"]), params).mappings()]
            if not batch:
                log.info("no callback events of %s to apply; the run row is left as it is", corp_id)
                return result
            complete_at = parse_db_time(
                conn.execute(text(self.sql["events"]["latest_complete_snapshot"]), params).scalar_one_or_none()
            )
            covered = [e for e in batch if complete_at is not None and _before(e.create_time, complete_at)]
            live = [e for e in batch if complete_at is None or not _before(e.create_time, complete_at)]
            user_groups = self._user_groups(conn, corp_id, [e for e in live if e.entity_type == "user"])
            department_groups = self._department_groups(
                conn, corp_id, [e for e in live if e.entity_type == "department"]
            )
        fetched = self._fetch(user_groups, department_groups)
        outcome: dict[str, list[int]] = {"applied": [], "superseded": [e.event_id for e in covered]}
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            step = _Pass(conn, corp_id, run.run_id, fetched, result, outcome)
            self._rename(step, live)
            self._apply_departments(step, department_groups)
            self._apply_users(step, user_groups)
            failures = step.failures
            for status, ids in outcome.items():
                self._mark(
                    conn, "mark_handled", corp_id, ids, status=status, applied_at=self._t(now), run_id=run.run_id
                )
            for message, ids in failures.items():
                self._mark(
                    conn,
                    "mark_failed",
                    corp_id,
                    ids,
                    last_error=message,
                    max_attempts=self.max_attempts,
                    run_id=run.run_id,
                )
            failed = {i for ids in failures.values() for i in ids}
            dying = sum(1 for e in batch if e.event_id in failed and e.attempts + 1 >= self.max_attempts)
            result.events = {k: len(v) for k, v in outcome.items()} | {"failed": len(failed) - dying, "dead": dying}
            result.api_calls = self.client.api_calls if self.client is not None and fetched else {}
            applied = set(outcome["applied"])
            result.observed_at = max((e.create_time for e in batch if e.event_id in applied), default=None)
            self.loader.record_run(
                conn,
                replace(run, kind="delta", api_calls_by_endpoint=result.api_calls),
                status="partial" if failures else "success",
                observed_at=result.observed_at,
                finished_at=datetime.now(UTC),
                counts=result.run_counts(),
                message=", ".join(f"{n} {status}" for status, n in result.events.items()) + " events",
            )
        log.info("applied callbacks of %s: %s", corp_id, result.as_dict())
        return result

    def _mark(self, conn: Connection, statement: str, corp_id: str, ids: list[int], **params: Any) -> None:
        sql = _expanding(self.sql["events"][statement], "event_ids")
        for chunk in _chunks(sorted(ids)):
            conn.execute(sql, {"corp_id": corp_id, "event_ids": chunk, **params})

    # --- grouping --------------------------------------------------------------------------------

    def _replayed(
        self, conn: Connection, corp_id: str, entity_type: str, keys: set[str], since: datetime
    ) -> list[Event]:
        sql = _expanding(self.sql["events"]["select_applied"], "keys")
        rows = []
        for chunk in _chunks(sorted(keys)):
            params = {"corp_id": corp_id, "entity_type": entity_type, "keys": chunk, "since": self._t(since)}
            rows += [_event(r) for r in conn.execute(sql, params).mappings()]
        return rows

    def _user_groups(self, conn: Connection, corp_id: str, ready: list[Event]) -> list[_Group]:
        """Ready member events plus the applied ones to replay, grouped under the member's latest userid."""
        if not ready:
            return []
        since = min(e.create_time for e in ready)
        renames = [e for e in ready if e.new_entity_id] + [
            _event(r)
            for r in conn.execute(
                text(self.sql["events"]["select_applied_renames"]), {"corp_id": corp_id, "since": self._t(since)}
            ).mappings()
        ]
        by_old: dict[str, list[Event]] = defaultdict(list)
        for rename in sorted({e.event_id: e for e in renames}.values(), key=lambda e: e.order_key):
            by_old[rename.entity_id].append(rename)

        def latest_userid(event: Event) -> str:
            userid, after = event.entity_id, event.order_key
            while True:
                later = [r for r in by_old.get(userid, ()) if r.order_key >= after]
                if not later:
                    return userid
                userid, after = later[0].new_entity_id or userid, later[0].order_key

        keys = {e.entity_id for e in ready} | {latest_userid(e) for e in ready}
        events = {e.event_id: e for e in ready + self._replayed(conn, corp_id, "user", keys, since)}
        groups: dict[str, list[Event]] = defaultdict(list)
        for event in sorted(events.values(), key=lambda e: e.order_key):
            groups[latest_userid(event)].append(event)
        return [_Group(key, evs) for key, evs in groups.items() if any(e.ready for e in evs)]

    def _department_groups(self, conn: Connection, corp_id: str, ready: list[Event]) -> list[_Group]:
        if not ready:
            return []
        since = min(e.create_time for e in ready)
        keys = {e.entity_id for e in ready}
        events = {e.event_id: e for e in ready + self._replayed(conn, corp_id, "department", keys, since)}
        groups: dict[str, list[Event]] = defaultdict(list)
        for event in sorted(events.values(), key=lambda e: e.order_key):
            groups[event.entity_id].append(event)
        return [_Group(key, evs) for key, evs in groups.items()]

    # --- fetching --------------------------------------------------------------------------------

    def _fetch(self, user_groups: list[_Group], department_groups: list[_Group]) -> dict[tuple[str, str], Fetched]:
        """Complete ids-only events: one fetch per entity, concurrently (the client limits the rate)."""
        wanted = [("user", g.key) for g in user_groups if any(e.needs_fetch() for e in g.events)]
        wanted += [("department", g.key) for g in department_groups if any(e.needs_fetch() for e in g.events)]
        if not wanted:
            return {}
        if self.client is None:
            raise ValueError("ids-only events need a WeCom client to fetch the entities")
        client = self.client

        def fetch(item: tuple[str, str]) -> Fetched:
            kind, key = item
            try:
                return client.user_get(key) if kind == "user" else client.department_get(int(key))
            except WeComNotFoundError:
                return Gone()
            except WeComError as error:
                return FetchFailed(f"{error.endpoint or kind} failed: {type(error).__name__} (errcode {error.errcode})")

        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(wanted))) as pool:
            return dict(zip(wanted, pool.map(fetch, wanted), strict=True))

    # --- renames ---------------------------------------------------------------------------------

    def _rename(self, step: _Pass, events: list[Event]) -> None:
        """Move the key of renamed members (and their links) before their new state is written."""
        conn, corp_id = step.conn, step.corp_id
        sql, history = self.sql["rename"], self.sql["history"]
        for event in sorted((e for e in events if e.new_entity_id), key=lambda e: e.order_key):
            params = {"corp_id": corp_id, "old": event.entity_id, "new": event.new_entity_id}
            params["renamed_at"] = self._t(event.create_time)
            if conn.execute(text(sql["drop_target"]), params).rowcount:
                for statement in ("drop_memberships", "drop_direct_leaders", "drop_led_departments"):
                    conn.execute(text(sql[statement]), params | {"userid": event.new_entity_id})
            if conn.execute(text(sql["move_user"]), params).rowcount:
                for statement in ("move_memberships", "move_direct_leaders", "move_led_departments"):
                    conn.execute(text(sql[statement]), params)
            elif conn.execute(text(sql["drop_user"]), params).rowcount:
                for statement in ("drop_memberships", "drop_direct_leaders", "drop_led_departments"):
                    conn.execute(text(sql[statement]), params | {"userid": event.entity_id})
            else:
                continue
            conn.execute(text(sql["move_leader_references"]), params)
            conn.execute(text(sql["drop_leader_references"]), params)
            closing = {"corp_id": corp_id, "userid": event.entity_id, "valid_from": params["renamed_at"]}
            conn.execute(text(history["close_user"]), closing)
            conn.execute(text(history["close_all_memberships"]), closing)

    # --- members ---------------------------------------------------------------------------------

    def _user_base(self, conn: Connection, corp_id: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Current rows as {userid: {"row": ..., "memberships": {dept: row}, "payload": user/get shape}}."""
        sql = self.sql["users"]
        bases: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(keys):
            params = {"corp_id": corp_id, "keys": chunk}
            for row in conn.execute(_expanding(sql["select_current"], "keys"), params).mappings():
                bases[row["userid"]] = {"row": dict(row), "memberships": {}, "leaders": []}
            for row in conn.execute(_expanding(sql["select_memberships"], "keys"), params).mappings():
                bases[row["userid"]]["memberships"][int(row["department_id"])] = dict(row)
            for row in conn.execute(_expanding(sql["select_direct_leaders"], "keys"), params).mappings():
                bases[row["userid"]]["leaders"].append(row["leader_userid"])
        for base in bases.values():
            base["payload"] = _user_payload(base["row"], base["memberships"].values(), base["leaders"])
        return bases

    def _user_states_before(
        self, conn: Connection, corp_id: str, keys: list[str], since: datetime, bases: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, dict[str, Any] | None]:
        """Each member's user/get-shaped state just before ``since`` as the history holds it (None: it
        did not exist then); members without history are left out. Direct leaders are not historized:
        today's are used."""
        sql = self.sql["users"]
        params = {"corp_id": corp_id, "since": self._t(since)}
        known: set[str] = set()
        rows: dict[str, dict[str, Any]] = {}
        memberships: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for chunk in _chunks(keys):
            chunk_params = params | {"keys": chunk}
            known |= {r[0] for r in conn.execute(_expanding(sql["select_history_known"], "keys"), chunk_params)}
            for row in conn.execute(_expanding(sql["select_history_before"], "keys"), chunk_params).mappings():
                rows[row["userid"]] = dict(row)
            for row in conn.execute(_expanding(sql["select_history_memberships_before"], "keys"), chunk_params):
                memberships[row.userid].append(dict(row._mapping))
        leaders = {key: bases[key]["leaders"] if key in bases else [] for key in known}
        return {key: _user_payload(rows[key], memberships[key], leaders[key]) if key in rows else None for key in known}

    def _apply_users(self, step: _Pass, groups: list[_Group]) -> None:
        if not groups:
            return
        outcome, failures = step.outcome, step.failures
        bases = self._user_base(step.conn, step.corp_id, [g.key for g in groups])
        replaying = [g for g in groups if len(g.ready) < len(g.events)]
        since = min((g.events[0].create_time for g in replaying), default=None)
        before = (
            {}
            if since is None
            else self._user_states_before(step.conn, step.corp_id, [g.key for g in replaying], since, bases)
        )
        folded: dict[str, tuple[list[tuple[datetime, dict[str, Any] | None]], bool]] = {}
        for group in groups:
            base = bases.get(group.key)
            ready_ids = [e.event_id for e in group.ready]
            observed = None if base is None else parse_db_time(base["row"]["observed_at"])
            if observed is not None and _before(group.stamp, observed):
                outcome["superseded"] += ready_ids
                continue
            got = step.fetched.get(("user", group.key))
            if isinstance(got, FetchFailed):
                failures[got.message] += ready_ids
                continue
            try:
                start, start_deleted = base and base["payload"], base is not None and base["row"]["is_deleted"]
                if group in replaying and group.key in before and since == group.events[0].create_time:
                    start, start_deleted = before[group.key], before[group.key] is None
                versions, said_leaders = fold_user(group.key, start, start_deleted, group.events, got)
            except EntityError as error:
                failures[f"member event: {error}"] += ready_ids
                continue
            outcome["applied"] += ready_ids
            versions = _not_before(versions, observed)
            existed = base is not None and not base["row"]["is_deleted"]
            if existed or any(state is not None for _, state in versions):
                folded[group.key] = (versions, said_leaders)
        if folded:
            self._protect(groups, step.fetched, folded)
            self._write_users(step, folded, bases)

    def _protect(
        self,
        groups: list[_Group],
        fetched: Mapping[tuple[str, str], Fetched],
        folded: dict[str, tuple[list[tuple[datetime, dict[str, Any] | None]], bool]],
    ) -> None:
        """Put the contact fields that came from WeCom (events, fetches) in the company's stored form.

        Stored rows already hold that form, so only values WeCom sent are mapped, all at once with
        the same ``PiiPolicy`` a full sync applies.
        """
        if not self.pii.modes:
            return
        sent: dict[str, set[str]] = {name: set() for name in PII_FIELDS}
        payloads = [
            {USER_EVENT_FIELDS[t]: v for t, v in e.payload.items() if t in USER_EVENT_FIELDS}
            for g in groups
            for e in g.events
        ]
        payloads += [got for (kind, _), got in fetched.items() if kind == "user" and isinstance(got, dict)]
        for payload in payloads:
            for name in PII_FIELDS:
                if isinstance(payload.get(name), str) and payload[name]:
                    sent[name].add(payload[name])
        width = max(map(len, sent.values()))
        raw = pd.DataFrame(
            {name: pd.Series([*sorted(v), *[None] * (width - len(v))], dtype="string") for name, v in sent.items()}
        )
        stored = self.pii.apply(raw)
        forms = {
            name: dict(zip(raw[name].dropna(), stored[name][raw[name].notna()].astype(object), strict=True))
            for name in PII_FIELDS
        }
        for versions, _ in folded.values():
            for _, state in versions:
                for name, form in forms.items():
                    if state is not None and state.get(name) in form:
                        value = form[state[name]]
                        state[name] = None if pd.isna(value) else value

    def _write_users(
        self,
        step: _Pass,
        folded: dict[str, tuple[list[tuple[datetime, dict[str, Any] | None]], bool]],
        bases: dict[str, dict[str, Any]],
    ) -> None:
        """Normalize every version with the full sync's transform, write history, then the current rows."""
        conn, corp_id, result = step.conn, step.corp_id, step.result
        rows_at: dict[tuple[str, int], dict[str, Any]] = {}
        links_at: dict[tuple[str, int], dict[int, dict[str, Any]]] = defaultdict(dict)
        final_links, final_direct, led = [], [], []
        for level in range(max(len(versions) for versions, _ in folded.values())):
            alive = {
                key: versions[level][1]
                for key, (versions, _) in folded.items()
                if level < len(versions) and versions[level][1] is not None
            }
            if not alive:
                continue
            users, links, direct = transform_users(pd.DataFrame(list(alive.values())), corp_id)
            rows_at |= {(key, level): row for key, row in _records(users, "userid").items()}
            for link in _rows(links):
                links_at[link["userid"], level][int(link["department_id"])] = link
            final = {key for key in alive if len(folded[key][0]) == level + 1}
            final_links += [link for link in _rows(links) if link["userid"] in final]
            final_direct += [row for row in _rows(direct) if row["userid"] in final]
            said = links[links["userid"].isin([key for key in final if folded[key][1]])]
            led += _rows(department_leaders_from_members(said, pd.Index(said["department_id"].unique())))
        stage = []
        for key, (versions, said_leaders) in folded.items():
            base = bases.get(key)
            old_row = base["row"] if base else None
            was_alive = old_row is not None and not old_row["is_deleted"]
            old_links = base["memberships"] if base and was_alive else {}
            last_row = old_row
            previous_hash = old_row["row_hash"] if was_alive else None
            previous_links: dict[int, dict[str, Any]] = old_links
            for level, (stamp, state) in enumerate(versions):
                t = self._t(stamp)
                row = rows_at.get((key, level))
                links = links_at.get((key, level), {})
                if state is not None and row is not None and row["row_hash"] != previous_hash:
                    self._open(step, "user", row, t, level)
                elif state is None and previous_hash is not None:
                    self._close(step, "user", {"userid": key}, t, level)
                for department, link in links.items():
                    if previous_links.get(department, {}).get("row_hash") != link["row_hash"]:
                        self._open(step, "membership", link, t, level)
                for department in previous_links.keys() - links.keys():
                    self._close(step, "membership", {"userid": key, "department_id": department}, t, level)
                previous_hash = None if row is None else row["row_hash"]
                previous_links = links
                last_row = row or last_row
            stamp, state = versions[-1]
            t = self._t(stamp)
            final_row = {c: last_row[c] for c in _USER_COLUMNS}
            stage.append(
                final_row
                | {
                    "corp_id": corp_id,
                    "is_deleted": state is None,
                    "deleted_at": t if state is None else None,
                    "replace_leaders": said_leaders or state is None,
                    "observed_at": t,
                }
            )
            self._count_user(result, old_row, None if state is None else final_row, old_links, previous_links)
        self._write_history(step)
        sql = self.sql["users"]
        _recreate_stages(conn, sql, ("", "links_", "direct_leaders_", "led_"))
        _stage(conn, "stage_delta_users", stage)
        _stage(conn, "stage_delta_user_departments", final_links)
        _stage(conn, "stage_delta_user_direct_leaders", final_direct)
        _stage(conn, "stage_delta_user_led_departments", led)
        params = {"corp_id": corp_id, "now": self._t(datetime.now(UTC))}
        for statement in (
            "upsert",
            "delete_stale_memberships",
            "upsert_memberships",
            "delete_stale_direct_leaders",
            "insert_direct_leaders",
            "delete_stale_led_departments",
            "insert_led_departments",
            "delete_references_to_deleted",
        ):
            conn.execute(text(sql[statement]), params)

    @staticmethod
    def _count_user(
        result: DeltaResult,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
        old_links: Mapping[int, Mapping[str, Any]],
        new_links: Mapping[int, Mapping[str, Any]],
    ) -> None:
        was_alive = old is not None and not old["is_deleted"]
        if new is None:
            result.users.deleted += was_alive
        elif old is None:
            result.users.inserted += 1
        elif not was_alive:
            result.users.revived += 1
        else:
            result.users.updated += old["row_hash"] != new["row_hash"]
        result.memberships.deleted += len(old_links.keys() - new_links.keys())
        for department, link in new_links.items():
            if department not in old_links:
                result.memberships.inserted += 1
            else:
                result.memberships.updated += old_links[department]["row_hash"] != link["row_hash"]

    # --- departments -----------------------------------------------------------------------------

    def _apply_departments(self, step: _Pass, groups: list[_Group]) -> None:
        if not groups:
            return
        conn, corp_id, outcome, failures = step.conn, step.corp_id, step.outcome, step.failures
        sql = self.sql["departments"]
        current = {
            str(r["department_id"]): dict(r)
            for r in conn.execute(text(sql["select_all"]), {"corp_id": corp_id}).mappings()
        }
        states: dict[str, tuple[dict[str, Any] | None, dict[str, Any], datetime]] = {}
        for group in groups:
            row = current.get(group.key)
            ready_ids = [e.event_id for e in group.ready]
            observed = None if row is None else parse_db_time(row["observed_at"])
            if observed is not None and _before(group.stamp, observed):
                outcome["superseded"] += ready_ids
                continue
            got = step.fetched.get(("department", group.key))
            if isinstance(got, FetchFailed):
                failures[got.message] += ready_ids
                continue
            base = None if row is None else _department_payload(row)
            try:
                state, content = fold_department(base, row is not None and row["is_deleted"], group.events, got)
            except EntityError as error:
                failures[f"department event: {error}"] += ready_ids
                continue
            outcome["applied"] += ready_ids
            if content is not None and (state is not None or row is None or not row["is_deleted"]):
                states[group.key] = (state, content, _not_before([(group.stamp, state)], observed)[0][0])
        if states:
            self._write_departments(step, states, current)

    def _write_departments(
        self,
        step: _Pass,
        states: dict[str, tuple[dict[str, Any] | None, dict[str, Any], datetime]],
        current: dict[str, dict[str, Any]],
    ) -> None:
        """Write the changed departments, then re-derive path, depth and closure for the whole tree.

        The tree holds the live departments only; one deleted before it was ever stored gets its
        row from the tree it last stood in."""
        conn, corp_id, result = step.conn, step.corp_id, step.result
        tree = {key: _department_payload(row) for key, row in current.items() if not row["is_deleted"]}
        for key, (state, _, _) in states.items():
            if state is None:
                tree.pop(key, None)
            else:
                tree[key] = state | {"id": int(key)}
        departments, _, closure = _department_tree(tree, corp_id)
        new_rows = _records(departments, "department_id")
        unstored = {key: content for key, (state, content, _) in states.items() if state is None and key not in current}
        if unstored:
            with_unstored = tree | {key: content | {"id": int(key)} for key, content in unstored.items()}
            new_rows |= {
                k: v
                for k, v in _records(_department_tree(with_unstored, corp_id)[0], "department_id").items()
                if str(k) in unstored
            }
        latest = max(stamp for _, _, stamp in states.values())
        stage, reshaped, leaders = [], [], []
        for key, (state, _, stamp) in states.items():
            old = current.get(key)
            t = self._t(stamp)
            if state is None:
                source = new_rows[int(key)] if old is None else old
                row = {c: source[c] for c in _DEPARTMENT_COLUMNS}
                stage.append(row | {"is_deleted": True, "deleted_at": t, "replace_leaders": True, "observed_at": t})
                result.departments.deleted += old is not None
                self._close(step, "department", {"department_id": int(key)}, t)
                continue
            row = new_rows[int(key)]
            has_leaders = "department_leader" in state
            stage.append(
                row | {"is_deleted": False, "deleted_at": None, "replace_leaders": has_leaders, "observed_at": t}
            )
            leaders += [
                {"corp_id": corp_id, "department_id": int(key), "userid": u} for u in state.get("department_leader", [])
            ]
            if old is None:
                result.departments.inserted += 1
            elif old["is_deleted"]:
                result.departments.revived += 1
            elif old["row_hash"] != row["row_hash"]:
                result.departments.updated += 1
            if old is None or old["is_deleted"] or old["row_hash"] != row["row_hash"]:
                self._open(step, "department", row, t)
        for department_id, row in new_rows.items():
            old = current.get(str(department_id))
            if str(department_id) in states or old is None or old["is_deleted"] or old["row_hash"] == row["row_hash"]:
                continue
            reshaped.append({k: row[k] for k in ("department_id", "path", "depth", "row_hash")} | {"corp_id": corp_id})
            result.departments.updated += 1
            self._open(step, "department", row, self._t(latest))
        for row in stage:
            row["corp_id"] = corp_id
        self._write_history(step)
        sql = self.sql["departments"]
        _recreate_stages(conn, sql, ("", "leaders_", "tree_", "closure_"))
        _stage(conn, "stage_delta_departments", stage)
        _stage(conn, "stage_delta_department_leaders", leaders)
        _stage(conn, "stage_delta_department_tree", reshaped)
        old_closure = {
            (int(r["ancestor_id"]), int(r["descendant_id"])): int(r["distance"])
            for r in conn.execute(text(sql["select_closure"]), {"corp_id": corp_id}).mappings()
        }
        new_closure = {(int(r["ancestor_id"]), int(r["descendant_id"])): int(r["distance"]) for r in _rows(closure)}
        changes = [
            {"corp_id": corp_id, "ancestor_id": a, "descendant_id": d, "distance": new_closure.get((a, d))}
            for (a, d) in old_closure.keys() | new_closure.keys()
            if old_closure.get((a, d)) != new_closure.get((a, d))
        ]
        _stage(conn, "stage_delta_department_closure", changes)
        params = {"corp_id": corp_id, "now": self._t(datetime.now(UTC))}
        for statement in (
            "upsert",
            "delete_stale_leaders",
            "insert_leaders",
            "delete_memberships_of_deleted",
            "update_tree",
            "delete_closure",
            "upsert_closure",
        ):
            conn.execute(text(sql[statement]), params)

    # --- history ---------------------------------------------------------------------------------

    @staticmethod
    def _open(step: _Pass, kind: str, row: Mapping[str, Any], t: Any, level: int = 0) -> None:
        """Close the version covering ``t`` and make ``row`` the version from ``t`` on."""
        key = {k: row[k] for k in _HISTORY_KEYS[kind]} | {"corp_id": step.corp_id, "valid_from": t}
        step.history[level][f"close_{kind}"].append(key)
        step.history[level][f"upsert_{kind}"].append(dict(row) | key | {"run_id": step.run_id})

    @staticmethod
    def _close(step: _Pass, kind: str, key: Mapping[str, Any], t: Any, level: int = 0) -> None:
        """End the version covering ``t`` (one that began exactly at ``t`` never held, and goes)."""
        params = dict(key) | {"corp_id": step.corp_id, "valid_from": t}
        step.history[level][f"close_{kind}"].append(params)
        step.history[level][f"drop_{kind}_version"].append(params)

    def _write_history(self, step: _Pass) -> None:
        """One level holds at most one change per entity, so its closes, drops and upserts can each go
        in bulk; levels (a member's successive versions) go in order."""
        for level in sorted(step.history):
            statements = step.history[level]
            for action in ("close_", "drop_", "upsert_"):
                for name, params in statements.items():
                    if name.startswith(action):
                        step.conn.execute(text(self.sql["history"][name]), params)
        step.history.clear()


def _before(create_time: datetime, observed_at: datetime) -> bool:
    """Whether an event surely happened before an observation: CreateTime is whole seconds, rounded down."""
    return create_time + CREATE_TIME_RESOLUTION <= observed_at


def _not_before(
    versions: list[tuple[datetime, dict[str, Any] | None]], observed_at: datetime | None
) -> list[tuple[datetime, dict[str, Any] | None]]:
    """Versions moved up to the stored row's observation time when their second overlaps it, so the
    write is not refused as older; of several landing on one time the last wins."""
    if observed_at is None:
        return versions
    moved: dict[datetime, dict[str, Any] | None] = {}
    for stamp, state in versions:
        at = stamp if _before(stamp, observed_at) else max(stamp, observed_at)
        moved.pop(at, None)
        moved[at] = state
    return list(moved.items())


def _department_tree(tree: Mapping[str, Mapping[str, Any]], corp_id: str) -> tuple[pd.DataFrame, ...]:
    """Departments with path, depth and hash, and the closure, exactly as a full sync derives them."""
    raw = pd.DataFrame(list(tree.values()), columns=["id", "name", "name_en", "parentid", "order"])
    return transform_departments(raw, corp_id)


def _department_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": int(row["department_id"]),
        "name": row["name"],
        "name_en": row["name_en"],
        "parentid": row["parent_id"],
        "order": row["sort_order"],
    }


def _rows(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Plain Python values (None for NA), ready to bind."""
    if frame is None or frame.empty:
        return []
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _records(frame: pd.DataFrame | None, key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: {k: v for k, v in row.items() if k != "corp_id"} for row in _rows(frame)}


def _user_payload(
    row: Mapping[str, Any], memberships: Iterable[Mapping[str, Any]], leaders: Iterable[str]
) -> dict[str, Any]:
    """A stored member (row, membership rows, direct leaders) in the user/get shape that events fold into."""
    payload = {f: row[c] for c, f in _USER_COLUMN_FIELDS.items() if row[c] is not None}
    if row["extattr"] is not None:
        payload["extattr"] = json.loads(row["extattr"])
    links = sorted(memberships, key=lambda m: m["department_id"])
    payload["department"] = [int(m["department_id"]) for m in links]
    payload["order"] = [m["sort_order"] for m in links]
    payload["is_leader_in_dept"] = [None if m["is_leader"] is None else int(m["is_leader"]) for m in links]
    payload["direct_leader"] = sorted(leaders)
    return payload


def _recreate_stages(conn: Connection, sql: Mapping[str, str], prefixes: Sequence[str]) -> None:
    """Drop, create and index the ``<prefix>stage`` tables of one statement file."""
    for prefix in prefixes:
        for step_name in ("drop", "create", "index"):
            conn.execute(text(sql[f"{step_name}_{prefix}stage"]))


def _stage(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        columns = list(rows[0])
        conn.execute(
            text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"), rows
        )
