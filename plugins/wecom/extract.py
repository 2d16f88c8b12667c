"""Walk the WeCom directory with one of the strategies the credentials allow.

Strategies, cheapest first:

- ``list``: department/list, then user/list per department (one call per department);
- ``detail``: department/simplelist + department/get, user/list_id + user/get per member
  (what an app created after 2022 may still call);
- ``ids``: department/simplelist + user/list_id only (a contact-sync assistant on an IP
  added after 2022-08-15): ids, parents and memberships, no names.

``auto`` tries them in that order and falls back when WeCom answers 48002/48009,
recording why. The raw answers are staged as JSON lines (``departments.jsonl``,
``users.jsonl``, each member once) with a ``manifest.json``. A fetch that fails
for scope reasons (60011) or because an entity vanished mid-walk makes the
snapshot incomplete: loaded, but nothing is deleted on its evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from wecom.client import WeComClient
from wecom.errors import WeComError, WeComNoPrivilegeError, WeComNotFoundError, WeComPermissionError
from wecom.staging import JsonLinesWriter, StagePath, ensure_dir, write_manifest

log = logging.getLogger("wecom.extract")

STRATEGIES = ("list", "detail", "ids")
CHOICES = ("auto", *STRATEGIES)
DEPARTMENTS_FILE = "departments.jsonl"
USERS_FILE = "users.jsonl"
MAX_REASONS = 20

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Walk:
    """What one strategy saw: written records plus why the snapshot may be incomplete."""

    departments: JsonLinesWriter
    users: JsonLinesWriter
    incomplete: list[str] = field(default_factory=list)
    seen_users: set[str] = field(default_factory=set)

    def add_users(self, records: Iterable[dict[str, Any]]) -> None:
        """Write members not written yet: list endpoints return a member once per department."""
        for record in records:
            if record["userid"] not in self.seen_users:
                self.seen_users.add(record["userid"])
                self.users.write(record)

    def missed(self, what: str, error: WeComError) -> None:
        self.incomplete.append(f"{what}: errcode {error.errcode} ({type(error).__name__})")


def concurrent_map(
    fn: Callable[[T], R], items: Iterable[T], max_workers: int
) -> Iterator[tuple[T, R | WeComError]]:
    """``fn`` over ``items`` on a thread pool, at most ``2 * max_workers`` in flight.

    Threads, not asyncio: the client is ``requests``-based and spends its time
    waiting on sockets, which releases the GIL; the client's rate limiter keeps
    the pace under WeCom's limits. Entity-level WeCom errors come back as
    values so that one bad department does not abort the walk; anything else
    (config errors, exhausted retries) propagates.
    """
    pending: dict[Future, T] = {}
    source = iter(items)
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="wecom") as pool:
        while True:
            for item in source:
                pending[pool.submit(fn, item)] = item
                if len(pending) >= 2 * max_workers:
                    break
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                try:
                    yield item, future.result()
                except (WeComNoPrivilegeError, WeComNotFoundError) as error:
                    yield item, error


def walk_list(client: WeComClient, walk: Walk, max_workers: int) -> None:
    departments = client.department_list()
    walk.departments.write_many(departments)
    for dept_id, result in concurrent_map(client.user_list, [d["id"] for d in departments], max_workers):
        if isinstance(result, WeComError):
            walk.missed(f"user/list department {dept_id}", result)
        else:
            walk.add_users(result)


def walk_ids(client: WeComClient, walk: Walk, max_workers: int, *, details: bool = False) -> None:
    """Id lists, optionally completed by one department/get and one user/get per entity."""
    departments = client.department_simplelist()
    if details:
        for dept_id, result in concurrent_map(
            client.department_get, [d["id"] for d in departments], max_workers
        ):
            if isinstance(result, WeComError):
                walk.missed(f"department/get {dept_id}", result)
            else:
                walk.departments.write(result)
    else:
        walk.departments.write_many(departments)
    memberships: dict[str, list[int]] = {}
    for row in client.user_list_id():
        memberships.setdefault(row["userid"], []).append(row["department"])
    if not details:
        walk.add_users({"userid": userid, "department": depts} for userid, depts in memberships.items())
        return
    for userid, result in concurrent_map(client.user_get, list(memberships), max_workers):
        if isinstance(result, WeComNotFoundError):
            log.info("member %s was deleted during the walk; skipped", userid)
        elif isinstance(result, WeComError):
            walk.missed(f"user/get {userid}", result)
        else:
            walk.add_users([result])


WALKERS: dict[str, Callable[[WeComClient, Walk, int], None]] = {
    "list": walk_list,
    "detail": lambda client, walk, workers: walk_ids(client, walk, workers, details=True),
    "ids": walk_ids,
}


def extract_directory(
    client: WeComClient, out_dir: StagePath, *, strategy: str = "auto", max_workers: int = 8
) -> dict[str, Any]:
    """Stage one snapshot of the directory under ``out_dir``; returns the manifest."""
    if strategy not in CHOICES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(CHOICES)}")
    ensure_dir(out_dir)
    observed_at = datetime.now(UTC)
    candidates = STRATEGIES if strategy == "auto" else (strategy,)
    fallbacks: list[str] = []
    for name in candidates:
        with (
            JsonLinesWriter(out_dir / DEPARTMENTS_FILE) as depts,
            JsonLinesWriter(out_dir / USERS_FILE) as users,
        ):
            walk = Walk(departments=depts, users=users)
            try:
                WALKERS[name](client, walk, max_workers)
            except WeComPermissionError as error:
                if strategy != "auto" or name == candidates[-1]:
                    raise
                fallbacks.append(f"{name}: {error.endpoint} answered {error.errcode}")
                log.warning(
                    "strategy %s is not allowed (%s %s); falling back", name, error.endpoint, error.errcode
                )
                continue
        break
    reason = (
        "chosen explicitly"
        if strategy != "auto"
        else ("; ".join(fallbacks) + f"; using {name}" if fallbacks else f"{name} is allowed")
    )
    stats = client.stats()
    manifest = {
        "corp_id": client.corp_id,
        "strategy": name,
        "strategy_reason": reason,
        "observed_at": observed_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "complete": not walk.incomplete,
        "incomplete_reasons": walk.incomplete[:MAX_REASONS]
        + ([f"and {len(walk.incomplete) - MAX_REASONS} more"] if len(walk.incomplete) > MAX_REASONS else []),
        "departments": depts.count,
        "users": users.count,
        "files": {"departments": DEPARTMENTS_FILE, "users": USERS_FILE},
        "api_calls": dict(stats["api_calls"]),
        "throttled": stats["throttled"],
    }
    write_manifest(out_dir, manifest)
    log.info(
        "extracted %s departments and %s members with strategy %s (%s), %s API calls, complete=%s",
        depts.count,
        users.count,
        name,
        reason,
        sum(manifest["api_calls"].values()),
        manifest["complete"],
    )
    return manifest
