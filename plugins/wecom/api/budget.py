"""One frequency budget per company, shared by every process that calls WeCom for it.

WeCom counts calls per API twice: per corp (10,000 a minute, 150,000 an hour)
and per caller IP (20,000 a minute, 600,000 an hour), and answers 45009 for the
rest of the window once a count is exceeded. The full sync and the callback DAG
of one company run in different processes, maybe on different machines, so the
count must live in a store they share (``budget_sql.SqlBudgetStore``);
``MemoryBudgetStore`` is the same budget for one process.

Why buckets: each window is cut into ``BUCKETS`` buckets aligned on the clock
(a minute into seconds, an hour into minutes) and a call is admitted only while
every run of buckets around the current one, spanning a window plus a margin
for latency and clock skew, holds fewer calls than the limit (later buckets
count too: a process may read the clock before another and reserve after it).
So any window-long span holds at most the limit, whether WeCom counts per clock
minute or per window opened by a first call; the price is the margin (about 3%).

Why blocks: a round trip to a database per call would cost more than the call.
A process reserves a block of calls of the current bucket at once, starting at
``min_block`` and doubling while it keeps using them up; a block is only good
within its bucket, and what is left of it is given back when the bucket ends
(a crashed process's block simply slides out of the window with its bucket).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

BUCKETS = 60
DEFAULT_EGRESS = "shared"


@dataclass(frozen=True)
class RateLimits:
    """Calls allowed per API and window, per corp and per caller IP; ``None`` disables a limit.

    The defaults are WeCom's published limits. ``minute_s``/``hour_s`` exist so that
    tests and benchmarks can run against a simulator with shortened windows.
    """

    per_minute: int | None = 10_000
    per_hour: int | None = 150_000
    ip_per_minute: int | None = 20_000
    ip_per_hour: int | None = 600_000
    minute_s: float = 60.0
    hour_s: float = 3600.0

    def __post_init__(self) -> None:
        for limit in (self.per_minute, self.per_hour, self.ip_per_minute, self.ip_per_hour):
            if limit is not None and limit < 1:
                raise ValueError(f"rate limits must be positive or None, got {limit}")
        if self.minute_s <= 0 or self.hour_s <= 0:
            raise ValueError("rate-limit windows must be positive")

    def windows(self) -> list[tuple[str, int, float]]:
        """The enabled (scope kind, limit, window seconds) triples; scope kind is ``corp`` or ``ip``."""
        triples = (
            ("corp", self.per_minute, self.minute_s),
            ("corp", self.per_hour, self.hour_s),
            ("ip", self.ip_per_minute, self.minute_s),
            ("ip", self.ip_per_hour, self.hour_s),
        )
        return [(kind, limit, length) for kind, limit, length in triples if limit is not None]


@dataclass(frozen=True)
class BudgetKey:
    """One counter family: a scope (``corp:<id>`` or ``ip:<egress>``), an API and a window length."""

    scope: str
    endpoint: str
    window_ms: int

    @property
    def bucket_s(self) -> float:
        return self.window_ms / 1000 / BUCKETS

    def expires_at(self, bucket: int, span: int) -> int:
        """When ``bucket`` stops counting in any window of ``span`` buckets (unix seconds, rounded up)."""
        return math.ceil((bucket + span + 1) * self.bucket_s)


class BudgetStore(Protocol):
    """Where the per-bucket counts live; every method is atomic against concurrent callers."""

    def reserve(self, key: BudgetKey, bucket: int, span: int, want: int, limit: int) -> int:
        """Grant up to ``want`` calls in ``bucket`` while every ``span`` buckets around it stay within ``limit``.

        Later buckets count too: a process that read the clock before another may reserve after it.
        """
        ...

    def give_back(self, key: BudgetKey, bucket: int, calls: int) -> None:
        """Return ``calls`` reserved in ``bucket`` that were never made."""
        ...


class MemoryBudgetStore:
    """The counts in a dict: for one process, and for tests of the budget's arithmetic."""

    def __init__(self) -> None:
        self._used: dict[tuple[BudgetKey, int], int] = {}
        self._expiry: dict[tuple[BudgetKey, int], int] = {}
        self._lock = threading.Lock()

    def reserve(self, key: BudgetKey, bucket: int, span: int, want: int, limit: int) -> int:
        with self._lock:
            self._prune(bucket * key.bucket_s)
            used = sum(self._used.get((key, b), 0) for b in range(bucket - span + 1, bucket + span))
            granted = max(0, min(want, limit - used))
            self._used[key, bucket] = self._used.get((key, bucket), 0) + granted
            self._expiry[key, bucket] = key.expires_at(bucket, span)
            return granted

    def give_back(self, key: BudgetKey, bucket: int, calls: int) -> None:
        with self._lock:
            if self._used.get((key, bucket), 0) >= calls:
                self._used[key, bucket] -= calls

    def _prune(self, now: float) -> None:
        """Forget buckets that slid out of every window, so a long-lived process does not grow."""
        for stale in [slot for slot, expiry in self._expiry.items() if expiry < now]:
            del self._used[stale], self._expiry[stale]


@dataclass
class _Block:
    """Calls this process reserved in one bucket of one counter and has not made yet."""

    bucket: int
    left: int = 0
    asked: int = 0


@dataclass(frozen=True)
class _Counter:
    key: BudgetKey
    limit: int
    span: int

    def bucket(self, now: float) -> int:
        return math.floor(now / self.key.bucket_s)

    def bucket_end(self, now: float) -> float:
        return (self.bucket(now) + 1) * self.key.bucket_s


@dataclass
class RateBudget:
    """Thread-safe: ``budget.acquire("user/get")`` blocks until one call may be sent.

    ``clock`` is wall time (buckets align on WeCom's minutes and hours; every
    process sharing a store needs the same clock, which NTP gives to within
    milliseconds); ``sleep`` is how the budget waits. ``margin_s`` covers the
    time from a bucket's end to WeCom counting a call admitted in it: half for a
    slow reservation round trip, half for the network and clock skew.
    """

    limits: RateLimits
    store: BudgetStore
    corp_id: str
    egress: str = DEFAULT_EGRESS
    min_block: int = 10
    max_block: int = 100
    margin_s: float = 1.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    _blocks: dict[BudgetKey, _Block] = field(default_factory=dict, init=False, repr=False)
    _counters: dict[str, list[_Counter]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.min_block <= self.max_block:
            raise ValueError(f"need 1 <= min_block <= max_block, got {self.min_block} and {self.max_block}")
        if self.margin_s < 0:
            raise ValueError("margin_s must not be negative")

    def acquire(self, endpoint: str) -> None:
        """Take one call of ``endpoint`` from every window, waiting for room when one is spent."""
        strict = True
        while (wait := self._try_take(endpoint, strict=strict)) is not None:
            # After one reservation that ran late, take the next even if it is late too:
            # a slow store must slow the calls down, not stop them.
            strict = wait > 0
            self.sleep(wait)

    def release_unused(self) -> None:
        """Give back every reserved call not made yet (a client calls this when it closes)."""
        with self._lock:
            for key, block in self._blocks.items():
                self._give_back(key, block)
            self._blocks.clear()

    def _counters_of(self, endpoint: str) -> list[_Counter]:
        """The counters one call of ``endpoint`` draws from (computed once per endpoint)."""
        if endpoint not in self._counters:
            counters = []
            for kind, limit, length in self.limits.windows():
                scope = f"corp:{self.corp_id}" if kind == "corp" else f"ip:{self.egress}"
                key = BudgetKey(scope, endpoint, round(length * 1000))
                span = BUCKETS + 1 + math.ceil(self.margin_s / key.bucket_s)
                counters.append(_Counter(key, limit, span))
            self._counters[endpoint] = counters
        return self._counters[endpoint]

    def _try_take(self, endpoint: str, *, strict: bool) -> float | None:
        """None when a call was taken from every counter, else seconds until it is worth trying again.

        ``strict``: refuse (and ask to retry at once) when reserving took so long that the call would
        leave more than half the margin after its bucket ended, so the other half still covers latency.
        """
        with self._lock:
            now = self.clock()
            counters = self._counters_of(endpoint)
            for counter in counters:
                if not self._has_call(counter, now):
                    return max(counter.bucket_end(now) - now, 0.001)
            if strict and self.clock() - min(c.bucket_end(now) for c in counters) > self.margin_s / 2:
                return 0.0
            for counter in counters:
                self._blocks[counter.key].left -= 1
            return None

    def _has_call(self, counter: _Counter, now: float) -> bool:
        """Make sure this process holds a call of ``counter`` in the current bucket, reserving a block if not."""
        bucket = counter.bucket(now)
        block = self._blocks.get(counter.key)
        if block is None or block.bucket != bucket:
            asked = 0
            if block is not None:
                self._give_back(counter.key, block)
                asked = block.asked // 2  # a busy process starts the next bucket with big blocks again
            block = self._blocks[counter.key] = _Block(bucket, asked=asked)
        if block.left:
            return True
        want = min(self.max_block, max(self.min_block, 2 * block.asked))
        block.left = self.store.reserve(counter.key, bucket, counter.span, want, counter.limit)
        block.asked = want
        return block.left > 0

    def _give_back(self, key: BudgetKey, block: _Block) -> None:
        if block.left:
            self.store.give_back(key, block.bucket, block.left)
            block.left = 0
