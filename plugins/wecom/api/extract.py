"""Walk the WeCom directory with one of the strategies the credentials allow.

Strategies, cheapest first:

- ``export``: the asynchronous export jobs (export/department, export/user), a
  handful of calls for any size; needs the connection's ``callback_aes_secret``,
  with which WeCom encrypts the files (see ``wecom.api.export_files``);
- ``list``: department/list, then user/list per department (one call per department);
- ``detail``: department/simplelist + department/get, user/list_id + user/get per member
  (what an app created after 2022 may still call);
- ``ids``: department/simplelist + user/list_id only (a contact-sync assistant on an IP
  added after 2022-08-15): ids, parents and memberships, no names.

``auto`` tries them in that order (``export`` only when a key is configured) and
falls back when WeCom answers 48002/48009, or when an export job fails or
delivers a corrupt or short file, recording why in the manifest
(``strategy_reason``, which the run row stores) and the log. A strategy chosen
explicitly that the credentials cannot use fails at once, naming the errcode
and the permission to grant. The raw answers are staged as JSON lines (``departments.jsonl``,
``users.jsonl``, each member once) with a ``manifest.json``. Only the company's department scope is
staged (``wecom.api.scope_walk``): ``list`` walks only the scope, the others filter what they read. A fetch that fails
for scope reasons (60011) or because an entity vanished mid-walk makes the
snapshot incomplete: loaded, but nothing is deleted on its evidence. The
manifest's ``withheld`` counts the records that lacked each field group
(``wecom.directory.rights``): what these credentials could not see. Every
strategy then reads the tags (``wecom.api.tag_walk``) into ``tags.jsonl``, each with only its members and
departments in the scope.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from wecom.api.client import WeComClient
from wecom.api.export_files import ExportJob, iter_export, wait_for
from wecom.api.scope_walk import EXITS_FILE, ScopeFilter, confirm_exits, list_subtrees
from wecom.api.tag_walk import TAGS_FILE, TAGS_GROUP, walk_tags
from wecom.constants import DEFAULT_MAX_WORKERS
from wecom.directory.rights import FieldTally, describe
from wecom.errors import (
    WeComError,
    WeComExportError,
    WeComNoPrivilegeError,
    WeComNotFoundError,
    WeComPermissionError,
)
from wecom.scope import WHOLE_COMPANY, CurrentEntities, Scope
from wecom.settings import CHOICES, STRATEGIES
from wecom.store.stage_path import StagePath, ensure_dir
from wecom.store.staging import JsonLinesWriter, write_json, write_manifest

log = logging.getLogger(__name__)

DEPARTMENTS_FILE = "departments.jsonl"
USERS_FILE = "users.jsonl"
MAX_REASONS = 20
EXPORT_BLOCK_SIZE = 100_000
EXPORT_TIMEOUT_S = 1800.0

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Walk:
    """What one strategy saw: written records plus why the snapshot may be incomplete."""

    departments: JsonLinesWriter
    users: JsonLinesWriter
    scoped: ScopeFilter = field(default_factory=lambda: ScopeFilter(WHOLE_COMPANY))
    incomplete: list[str] = field(default_factory=list)
    seen_users: set[str] = field(default_factory=set)
    facts: dict[str, Any] = field(default_factory=dict)

    def add_departments(self, records: list[dict[str, Any]], *, whole_tree: bool, write: bool = True) -> list:
        """Stage the in-scope departments among ``records`` (``whole_tree``: every one the secret sees)."""
        placed = self.scoped.place(records, whole_tree=whole_tree)
        if write:
            self.departments.write_many(placed)
        return placed

    def add_users(self, records: Iterable[dict[str, Any]]) -> None:
        """Write members not written yet: list endpoints return a member once per department."""
        for record in records:
            if record["userid"] not in self.seen_users and (placed := self.scoped.member(record)) is not None:
                self.seen_users.add(record["userid"])
                self.users.write(placed)

    def write_users(self, records: Iterable[dict[str, Any]]) -> None:
        """Write members from a source that lists each once (an export), in scope only."""
        self.scoped.sees_members = True
        self.users.write_many(placed for record in records if (placed := self.scoped.member(record)) is not None)

    def missed(self, what: str, error: WeComError) -> None:
        self.incomplete.append(f"{what}: errcode {error.errcode} ({type(error).__name__})")


def concurrent_map(fn: Callable[[T], R], items: Iterable[T], max_workers: int) -> Iterator[tuple[T, R | WeComError]]:
    """``fn`` over ``items`` on a thread pool, at most ``2 * max_workers`` in flight.

    Threads, not asyncio: the client is ``requests``-based and spends its time
    waiting on sockets, which releases the GIL, and the concurrency that pays
    is small (WeCom's 10,000 calls a minute at 20-200 ms each need 4-35 calls
    in flight), far below where threads cost more than an event loop. Threads
    keep one synchronous client for the hook, the tests and the callbacks'
    fetches, with a blocking limiter and gate that are simple to reason about;
    asyncio would need a second, async HTTP stack (and async twins of the
    limiter and retries) for no measurable gain: the CPU cost is JSON parsing,
    which neither model parallelizes. The client's frequency limiter keeps the
    pace under WeCom's limits and its adaptive gate narrows the concurrency on
    45033 or slow answers, so ``max_workers`` is a ceiling, not a promise.
    Entity-level WeCom errors come back as
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


def walk_export(client: WeComClient, walk: Walk, max_workers: int, *, block_size: int, timeout_s: float) -> None:
    """Both export jobs started at once, their files downloaded in parallel and streamed to staging."""
    jobs = [ExportJob(client, kind, block_size=block_size) for kind in ("department", "user")]
    walk.facts["export_jobs"] = {job.kind: job.jobid for job in jobs}
    wait_for(jobs, timeout_s=timeout_s)
    with tempfile.TemporaryDirectory(prefix="wecom-export-") as spool:
        departments, users = jobs
        walk.add_departments(
            list(iter_export(departments, max_workers=max_workers, spool=Path(spool))), whole_tree=True
        )
        walk.write_users(iter_export(users, max_workers=max_workers, spool=Path(spool)))


def walk_list(client: WeComClient, walk: Walk, max_workers: int) -> None:
    """department/list (of each included subtree when scoped), then user/list per in-scope department."""
    whole = walk.scoped.scope.whole
    listed = client.department_list() if whole else list_subtrees(client, walk.scoped.scope)
    departments = walk.add_departments(listed, whole_tree=whole)
    for dept_id, result in concurrent_map(client.user_list, [d["id"] for d in departments], max_workers):
        if isinstance(result, WeComError):
            walk.missed(f"user/list department {dept_id}", result)
        else:
            walk.add_users(result)


def walk_ids(client: WeComClient, walk: Walk, max_workers: int, *, details: bool = False) -> None:
    """Id lists, optionally completed by one department/get and one user/get per entity."""
    departments = walk.add_departments(client.department_simplelist(), whole_tree=True, write=not details)
    if details:
        for dept_id, result in concurrent_map(client.department_get, [d["id"] for d in departments], max_workers):
            if isinstance(result, WeComError):
                walk.missed(f"department/get {dept_id}", result)
            else:
                walk.departments.write(result)
    memberships: dict[str, list[int]] = {}
    for row in client.user_list_id():
        memberships.setdefault(row["userid"], []).append(row["department"])
    walk.scoped.sees_members = True
    if not details:
        walk.add_users({"userid": userid, "department": depts} for userid, depts in memberships.items())
        return
    in_scope = [u for u, depts in memberships.items() if walk.scoped.member({"userid": u, "department": depts})]
    for userid, result in concurrent_map(client.user_get, in_scope, max_workers):
        if isinstance(result, WeComNotFoundError):
            log.info("member %s was deleted during the walk; skipped", userid)
        elif isinstance(result, WeComError):
            walk.missed(f"user/get {userid}", result)
        else:
            walk.add_users([result])


Walker = Callable[[WeComClient, Walk, int], None]
WALKERS: dict[str, Walker] = {
    "list": walk_list,
    "detail": partial(walk_ids, details=True),
    "ids": walk_ids,
}


def _candidates(client: WeComClient, strategy: str) -> tuple[list[str], list[str]]:
    """The strategies to try in order, and why any were skipped before trying."""
    if strategy != "auto":
        return [strategy], []
    if client.can_export:
        return list(STRATEGIES), []
    return [name for name in STRATEGIES if name != "export"], [
        "export skipped: no callback_aes_secret (the EncodingAESKey) in the connection extra"
    ]


def _cannot_use(name: str, error: WeComPermissionError) -> WeComPermissionError:
    """A strategy chosen explicitly that the credentials may not use: the client's advice names the grant."""
    return WeComPermissionError(
        f"strategy {name!r} cannot be used with these credentials: {error}; "
        "or set the strategy to 'auto' to use the cheapest one that is allowed",
        errcode=error.errcode,
        endpoint=error.endpoint,
    )


def extract_directory(
    client: WeComClient,
    out_dir: StagePath,
    *,
    strategy: str = "auto",
    max_workers: int = DEFAULT_MAX_WORKERS,
    export_block_size: int = EXPORT_BLOCK_SIZE,
    export_timeout_s: float = EXPORT_TIMEOUT_S,
    scope: Scope = WHOLE_COMPANY,
    current: Callable[[], CurrentEntities] | None = None,
) -> dict[str, Any]:
    """Stage one snapshot of the company's ``scope`` under ``out_dir``; returns the manifest.

    ``current`` reads what the tables hold as current; a scoped extraction compares its walk with it
    to tell who left the scope (``scope_walk.confirm_exits``), and reads it only then."""
    if strategy not in CHOICES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(CHOICES)}")
    ensure_dir(out_dir)
    observed_at = datetime.now(UTC)
    walkers = WALKERS | {"export": partial(walk_export, block_size=export_block_size, timeout_s=export_timeout_s)}
    candidates, fallbacks = _candidates(client, strategy)
    known = None if scope.whole or current is None else current()
    for name in candidates:
        tally = FieldTally()
        with (
            JsonLinesWriter(out_dir / DEPARTMENTS_FILE, tally.observer("departments")) as depts,
            JsonLinesWriter(out_dir / USERS_FILE, tally.observer("users")) as users,
        ):
            walk = Walk(departments=depts, users=users, scoped=ScopeFilter(scope, known))
            try:
                walkers[name](client, walk, max_workers)
                if reason := walk.scoped.incomplete_reason():
                    walk.incomplete.append(reason)
                if not walk.incomplete:
                    confirm_exits(client, walk.scoped, walk.add_users, partial(concurrent_map, max_workers=max_workers))
            except WeComPermissionError as error:
                if strategy != "auto":
                    raise _cannot_use(name, error) from None
                if name == candidates[-1]:
                    raise
                fallbacks.append(f"{name}: {error.endpoint} answered errcode {error.errcode} (not allowed)")
            except WeComExportError as error:
                if strategy != "auto":
                    raise
                fallbacks.append(f"{name}: {error}")
            else:
                break
        log.warning("strategy %s failed (%s); falling back to %s", name, fallbacks[-1], _next(candidates, name))
    with JsonLinesWriter(out_dir / TAGS_FILE) as tag_writer:
        mapper = partial(concurrent_map, max_workers=max_workers)
        tags = walk_tags(
            client,
            tag_writer,
            mapper,
            block_size=export_block_size,
            timeout_s=export_timeout_s,
            place=walk.scoped.tag,
        )
    if strategy != "auto":
        reason = "chosen explicitly"
    elif fallbacks:
        reason = "; ".join([*fallbacks, f"using {name}"])
    else:
        reason = f"{name} is the cheapest allowed"
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
        "content_digest": {"departments": depts.digest, "users": users.digest, "tags": tag_writer.digest},
        "withheld": tally.as_dict() | ({TAGS_GROUP: tags.withheld} if tags.withheld else {}),
        "files": {"departments": DEPARTMENTS_FILE, "users": USERS_FILE, "tags": TAGS_FILE, "scope_exits": EXITS_FILE},
        "api_calls": dict(stats["api_calls"]),
        "throttled": stats["throttled"],
        "concurrency": {"limit": client.concurrency.limit, "decreases": client.concurrency.decreases},
        **walk.scoped.manifest(),
        **tags.manifest(tag_writer.count),
        **walk.facts,
    }
    write_json(out_dir / EXITS_FILE, walk.scoped.exits)
    write_manifest(out_dir, manifest)
    if manifest["withheld"]:
        log.warning("WeCom withheld these field groups (stored values are kept): %s", describe(manifest["withheld"]))
    log.info(
        "extracted %s departments, %s members and %s tags with strategy %s (%s), %s API calls, complete=%s",
        depts.count,
        users.count,
        tag_writer.count,
        name,
        reason,
        sum(manifest["api_calls"].values()),
        manifest["complete"],
    )
    return manifest


def _next(candidates: list[str], name: str) -> str:
    return candidates[candidates.index(name) + 1]
