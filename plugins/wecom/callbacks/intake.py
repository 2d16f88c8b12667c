"""The receiver's write path: events wait in a queue per engine and a few threads commit them in batches.

A commit that survives power loss costs an fsync (about 0.4 ms with SQLite),
which caps one commit per event near 1,000 events/s; committing whatever
waits in one transaction keeps every acknowledgement durable under load, and
PostgreSQL gains the same group commit. Requests wait for their event's
future with a deadline (``receiver.py``); an event whose request gave up
before a thread took it is dropped (WeCom retries it), so a stalled database
does not leave a backlog to write when it returns. More than one thread per
engine means one connection stuck on a frozen backend does not stop the rest.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from wecom.callbacks.events_table import (
    RETRYABLE_SQLSTATES,
    NewEvent,
    check_events_table,
    sqlstate,
    store_events,
)

# Driver errors that say the database cannot be reached, is locked or too slow: the whole batch fails.
_UNAVAILABLE = (OperationalError, InterfaceError)
RETRIES = 3


@dataclass
class Pending:
    """An event waiting for a writer; its future resolves to True if new, False if a redelivery."""

    event: NewEvent
    future: Future[bool] = field(default_factory=Future)


def _fail(batch: list[Pending], exc: BaseException) -> None:
    for pending in batch:
        pending.future.set_exception(exc)


def write_batch(engine: Engine, batch: list[Pending]) -> None:
    """Commit ``batch`` in one transaction and resolve its futures.

    A deadlock or serialization failure is retried (the events are stored in
    one order, so it needs another writer to cross them); any other failure of
    a single statement is retried event by event, so one event the database
    refuses cannot take the events batched with it down too.
    """
    for attempt in range(RETRIES):
        try:
            with engine.begin() as connection:
                results = store_events(connection, [p.event for p in batch])
        except DBAPIError as exc:
            if sqlstate(exc) in RETRYABLE_SQLSTATES and attempt + 1 < RETRIES:
                continue
            if len(batch) == 1 or isinstance(exc, _UNAVAILABLE):
                _fail(batch, exc)
            else:
                for pending in batch:
                    write_batch(engine, [pending])
            return
        except Exception as exc:
            _fail(batch, exc)
            return
        for pending, is_new in zip(batch, results, strict=True):
            pending.future.set_result(is_new)
        return


@dataclass
class _Lane:
    """The queue of one engine and how many of its threads are alive and idle."""

    waiting: queue.SimpleQueue[Pending] = field(default_factory=queue.SimpleQueue)
    alive: int = 0
    idle: int = 0


class Intake:
    """Up to ``threads`` writer threads per engine (one for SQLite), each committing up to ``max_batch``.

    The table is checked (``prepare``) before an engine's first batch, and
    again after a check failed, never per request. A thread ends after
    ``idle_s`` without events; the next event starts one.
    """

    def __init__(
        self,
        *,
        threads: int = 2,
        max_batch: int = 256,
        idle_s: float = 5.0,
        prepare: Callable[[Engine], None] = check_events_table,
    ) -> None:
        self._threads = threads
        self._max_batch = max_batch
        self._idle_s = idle_s
        self._prepare = prepare
        self._lock = threading.Lock()
        self._lanes: dict[Engine, _Lane] = {}
        self._prepared: set[Engine] = set()

    def submit(self, engine: Engine, event: NewEvent) -> Future[bool]:
        pending = Pending(event)
        with self._lock:
            lane = self._lanes.setdefault(engine, _Lane())
            lane.waiting.put(pending)
            # SQLite has one writer at a time: a second thread would only wait for its lock.
            threads = 1 if engine.dialect.name == "sqlite" else self._threads
            if lane.idle == 0 and lane.alive < threads:
                lane.alive += 1
                worker = threading.Thread(
                    target=self._run, args=(engine, lane), name="wecom-callback-intake", daemon=True
                )
                worker.start()
        return pending.future

    def _take(self, lane: _Lane) -> list[Pending] | None:
        """The next batch, or None when the lane has been idle long enough to end this thread."""
        with self._lock:
            lane.idle += 1
        try:
            first = lane.waiting.get(timeout=self._idle_s)
        except queue.Empty:
            with self._lock:
                lane.idle -= 1
                if lane.waiting.empty():
                    lane.alive -= 1
                    return None
            return []
        with self._lock:
            lane.idle -= 1
        batch = [first]
        while len(batch) < self._max_batch and not lane.waiting.empty():
            batch.append(lane.waiting.get_nowait())
        # A request that gave up (deadline) cancelled its future: nobody waits for that write.
        return [p for p in batch if p.future.set_running_or_notify_cancel()]

    def _run(self, engine: Engine, lane: _Lane) -> None:
        while (batch := self._take(lane)) is not None:
            if not batch:
                continue
            if engine not in self._prepared:
                try:
                    self._prepare(engine)
                except Exception as exc:
                    _fail(batch, exc)
                    continue
                self._prepared.add(engine)
            write_batch(engine, batch)
