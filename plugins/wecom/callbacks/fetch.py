"""Complete ids-only events with WeCom's present answer, in as few calls as the batch allows.

Callback URLs set up after 2022-08-15 send member events with only ``UserID`` and ``Department``,
and ``create_party`` events with only ids, so the applier asks WeCom for the rest when its secret
may. One ``user/get`` per member is as fast as anything while the members fit in one round of
concurrent calls. Past that (a burst, a backlog after an outage) the members are read by
department instead: one ``user/list`` answers for every member directly in a department, so
where several waiting members sit in one department it replaces their ``user/get`` calls, both
in time and against WeCom's per-API budget. A department is read that way only while its answer
stays small next to the calls it saves (``RECORDS_PER_CALL``); a member its answer does not
hold (moved meanwhile, or refused) is asked by ``user/get`` after all.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine

from wecom.api.client import WeComClient
from wecom.callbacks.fold import Fetched, FetchFailed, Gone, Group, named_departments
from wecom.callbacks.queue import expanding, in_chunks
from wecom.errors import (
    EventApplyError,
    WeComError,
    WeComNoPrivilegeError,
    WeComNotFoundError,
    WeComPermissionError,
)
from wecom.store.sql import read_named_statements

log = logging.getLogger(__name__)

# A user/list answer of this many members costs about what one more call does (the round trip
# against the parsing of the answer), so a department is read whole while its stored members,
# divided by this, are fewer than the user/get calls reading it saves.
RECORDS_PER_CALL = 100
Item = tuple[str, str]
T = TypeVar("T")
R = TypeVar("R")


def waiting_departments(groups: Iterable[Group]) -> dict[str, set[int]]:
    """The members whose events carry only ids, with the departments those events place them in."""
    waiting: dict[str, set[int]] = {}
    for group in groups:
        if any(e.needs_fetch() for e in group.events):
            try:
                waiting[group.key] = named_departments(group.ready)
            except EventApplyError:  # the fold reports the malformed list; the member is fetched alone
                waiting[group.key] = set()
    return waiting


def plan_user_lists(
    waiting: Mapping[str, set[int]], sizes: Mapping[int, int], max_workers: int
) -> dict[int, list[str]]:
    """Departments to read with one ``user/list`` each, with the waiting members it answers for.

    Each member goes to the department of its event that the most waiting members share; a
    department is read when at least two wait in it and its stored size (``sizes``, members
    unknown here count as none) is small next to the calls saved. Empty while every member fits in
    one round of ``max_workers`` concurrent calls: then per-member calls are as fast."""
    if len(waiting) <= max_workers:
        return {}
    shared = Counter(d for departments in waiting.values() for d in departments)
    chosen: dict[int, list[str]] = {}
    for userid, departments in waiting.items():
        if departments:
            best = max(departments, key=lambda d: (shared[d], -d))
            chosen.setdefault(best, []).append(userid)
    return {
        department: sorted(userids)
        for department, userids in sorted(chosen.items())
        if len(userids) >= 2 and len(userids) - 1 >= sizes.get(department, 0) / RECORDS_PER_CALL
    }


def department_sizes(engine: Engine, corp_id: str, departments: Iterable[int]) -> dict[int, int]:
    """Stored members per department (current memberships)."""
    statement = expanding(read_named_statements("deltas/users.sql", engine.dialect.name)["count_members"], "ids")
    sizes: dict[int, int] = {}
    with engine.connect() as conn:
        for chunk in in_chunks(set(departments)):
            for department, count in conn.execute(statement, {"corp_id": corp_id, "ids": chunk}):
                sizes[int(department)] = int(count)
    return sizes


class Fetcher:
    """One apply's fetches with one client: what each entity's answer was, and what was refused.

    Once the secret is refused an endpoint (48002, 48009), the batch's other fetches of it are not
    made: the answer would be the same. 60011 refuses one entity (outside the visible scope)."""

    def __init__(self, client: WeComClient, max_workers: int) -> None:
        self.client = client
        self.max_workers = max_workers
        self.refused: dict[str, int] = {}
        self._blocked: set[str] = set()

    def fetch(
        self,
        engine: Engine,
        corp_id: str,
        user_groups: list[Group],
        department_groups: list[Group],
        entering: Sequence[Item] = (),
        *,
        tags: Sequence[str] = (),
    ) -> dict[Item, Fetched | None]:
        """Every entity whose events need a fetch, each of ``entering`` (that may be entering the
        department scope) and each of ``tags`` (not known here), with its answer (None: the secret may
        not ask)."""
        waiting = waiting_departments(user_groups)
        wanted_departments = [g.key for g in department_groups if any(e.needs_fetch() for e in g.events)]
        plan: dict[int, list[str]] = {}
        if len(waiting) > self.max_workers:
            named = {d for departments in waiting.values() for d in departments}
            plan = plan_user_lists(waiting, department_sizes(engine, corp_id, named), self.max_workers)
        listed = {userid for userids in plan.values() for userid in userids}
        single: list[Item] = [("user", u) for u in waiting if u not in listed]
        single += [("department", key) for key in wanted_departments]
        single += [item for item in dict.fromkeys(entering) if item not in single and item[1] not in listed]
        single += [("tag", key) for key in tags]
        answers: dict[Item, Fetched | None] = {}
        lists = self._map(self._user_list, list(plan.items()))
        answers |= dict(zip(single, self._map(self._one, single), strict=True))
        missed: list[Item] = []
        for (_, userids), members in zip(plan.items(), lists, strict=True):
            for userid in userids:
                if userid.casefold() in members:
                    answers["user", userid] = members[userid.casefold()]
                else:
                    missed.append(("user", userid))
        answers |= dict(zip(missed, self._map(self._one, missed), strict=True))
        if plan:
            log.info(
                "fetched %d waiting members with %d user/list calls (%d by user/get after all)",
                len(listed) - len(missed),
                len(plan),
                len(missed),
            )
        return answers

    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            return list(pool.map(fn, items))

    def _user_list(self, planned: tuple[int, list[str]]) -> dict[str, dict[str, Any]]:
        """The members ``user/list`` answers for one department by case-folded userid (WeCom's userids
        are case-insensitive); none when it fails for any reason (its waiting members are then asked
        one by one, which says why for each)."""
        department, _ = planned
        if "user/get" in self._blocked:
            return {}
        try:
            return {member["userid"].casefold(): member for member in self.client.user_list(department)}
        except WeComError:
            return {}

    def _one(self, item: Item) -> Fetched | None:
        kind, key = item
        endpoint = fetch_endpoint(kind)
        if endpoint in self._blocked:
            return None
        try:
            return FETCHERS[kind](self.client, key)
        except WeComNotFoundError:
            return Gone()
        except (WeComPermissionError, WeComNoPrivilegeError) as error:
            self.refused.setdefault(endpoint, error.errcode)  # dict and set operations are atomic
            if isinstance(error, WeComPermissionError):
                self._blocked.add(endpoint)
            return None
        except WeComError as error:
            return FetchFailed(f"{error.endpoint or endpoint} failed: {type(error).__name__} (errcode {error.errcode})")


FETCHERS: dict[str, Callable[[WeComClient, str], dict[str, Any]]] = {
    "user": lambda client, key: client.user_get(key),
    "department": lambda client, key: client.department_get(int(key)),
    "tag": lambda client, key: client.tag_get(int(key)),
}


def fetch_endpoint(kind: str) -> str:
    return f"{kind}/get"
