"""Client-side frequency limiter mirroring WeCom's per-corp, per-API limits.

WeCom counts calls per corp and per API in fixed windows (10,000 a minute and
150,000 an hour by default) and answers 45009 for the rest of the window once a
count is exceeded, which can stall a sync for a whole hour. Staying under the
limit on our side is far cheaper than waiting out a block.

Why a sliding window log and not a token bucket: a bucket allows a burst of its
capacity on top of its refill, so two bursts straddling the server's window
boundary can exceed N within one fixed window. A log that admits a call only
when fewer than N calls lie in the last ``window`` seconds guarantees at most N
in *any* window of that length, whatever the server's window alignment.

Why calls are counted until ``window`` seconds after they *finish*: the server
sees a call somewhere between our send and our receipt of the answer. Counting
a call as in flight until the answer arrives and then for a full window after
it keeps any N+1 calls more than a window apart at the server, despite latency
jitter or a thread descheduled between admission and send. It costs one round
trip per window: a 0.2 s answer slows a saturated 60 s window by 0.3%.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class RateLimits:
    """Calls allowed per API; ``None`` disables a window. Tenants differ, so every number is configurable."""

    per_minute: int | None = 10_000
    per_hour: int | None = 150_000
    minute_s: float = 60.0
    hour_s: float = 3600.0

    def __post_init__(self) -> None:
        for limit in (self.per_minute, self.per_hour):
            if limit is not None and limit < 1:
                raise ValueError(f"rate limits must be positive or None, got {limit}")
        if self.minute_s <= 0 or self.hour_s <= 0:
            raise ValueError("rate-limit windows must be positive")

    def windows(self) -> list[tuple[int, float]]:
        """The enabled (limit, window seconds) pairs."""
        pairs = ((self.per_minute, self.minute_s), (self.per_hour, self.hour_s))
        return [(limit, length) for limit, length in pairs if limit is not None]


@dataclass
class _EndpointLog:
    """Calls of one API: how many are in flight and when the finished ones ended, per window."""

    finished: list[deque[float]]
    in_flight: int = 0

    def wait_s(self, now: float, windows: list[tuple[int, float]]) -> float | None:
        """0 when a call may start now, else seconds to wait, or None to wait for a call to finish."""
        waits: list[float] = []
        for (limit, length), stamps in zip(windows, self.finished, strict=True):
            horizon = now - length
            while stamps and stamps[0] <= horizon:
                stamps.popleft()
            excess = self.in_flight + len(stamps) - limit
            if excess < 0:
                continue
            if excess >= len(stamps):
                return None
            waits.append(stamps[excess] - horizon)
        return max(waits, default=0.0)


class Permit:
    """One admitted call; release it (or leave its ``with`` block) when the answer has arrived."""

    def __init__(self, limiter: RateLimiter, endpoint: str) -> None:
        self._limiter = limiter
        self._endpoint = endpoint
        self._released = False

    def release(self) -> None:
        """Mark the call finished; calling it twice is harmless."""
        if not self._released:
            self._released = True
            self._limiter._finish(self._endpoint)

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class RateLimiter:
    """Thread-safe limiter per API endpoint: ``with limiter.acquire("user/get"): send()``."""

    def __init__(self, limits: RateLimits | None = None) -> None:
        self.limits = limits or RateLimits()
        self._logs: dict[str, _EndpointLog] = {}
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return f"RateLimiter({self.limits!r})"

    def acquire(self, endpoint: str) -> Permit:
        """Block until ``endpoint`` may be called without exceeding any window; returns the permit."""
        windows = self.limits.windows()
        with self._cond:
            log = self._logs.get(endpoint)
            if log is None:
                log = self._logs[endpoint] = _EndpointLog([deque() for _ in windows])
            while (wait := log.wait_s(time.monotonic(), windows)) != 0.0:
                self._cond.wait(wait)
            log.in_flight += 1
        return Permit(self, endpoint)

    def _finish(self, endpoint: str) -> None:
        with self._cond:
            log = self._logs[endpoint]
            log.in_flight -= 1
            now = time.monotonic()
            for stamps in log.finished:
                stamps.append(now)
            self._cond.notify_all()


class Slot:
    """One call admitted by ``AdaptiveConcurrency``; say ``overloaded()`` when WeCom answered 45033."""

    def __init__(self, gate: AdaptiveConcurrency, started: float) -> None:
        self._gate = gate
        self.started = started
        self._overloaded = False

    def overloaded(self) -> None:
        self._overloaded = True

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._gate._release(self.started, overloaded=self._overloaded)


class AdaptiveConcurrency:
    """How many calls may be in flight, adjusted AIMD-style like TCP's congestion window.

    WeCom publishes no concurrency limit (old material says 300 per corp) and
    answers 45033 above it; a server that slows down is queueing our calls, so
    more concurrency only adds latency. Each answer that is neither 45033 nor
    slow raises the limit by ``1/limit`` (about +1 per round of ``limit`` calls);
    a 45033 or a slow answer halves it, at most once per round trip: calls that
    started before the last decrease were sent under the old limit and say
    nothing about the new one. "Slow" is relative to the fastest answers seen
    (``slow_factor`` times the baseline plus ``slow_slack_s``), so the gate works
    at 20 ms and at 300 ms of network latency alike. This sits on top of the
    frequency limiter, which it never loosens.
    """

    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        slow_factor: float = 4.0,
        slow_slack_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= min_limit <= max_limit:
            raise ValueError(f"need 1 <= min_limit <= max_limit, got {min_limit} and {max_limit}")
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.slow_factor = slow_factor
        self.slow_slack_s = slow_slack_s
        self._clock = clock
        self._limit = float(max_limit)
        self._in_flight = 0
        self._baseline: float | None = None
        self._last_decrease = float("-inf")
        self.decreases = 0
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return f"AdaptiveConcurrency(limit={self.limit}, max_limit={self.max_limit})"

    @property
    def limit(self) -> int:
        """Calls allowed in flight now."""
        with self._cond:
            return int(self._limit)

    def slot(self) -> Slot:
        """Block until fewer than ``limit`` calls are in flight; use the slot as a context manager."""
        with self._cond:
            while self._in_flight >= int(self._limit):
                self._cond.wait()
            self._in_flight += 1
            return Slot(self, self._clock())

    def _release(self, started: float, *, overloaded: bool) -> None:
        now = self._clock()
        latency = now - started
        with self._cond:
            self._in_flight -= 1
            baseline = self._baseline
            slow = baseline is not None and latency > self.slow_factor * baseline + self.slow_slack_s
            if overloaded or slow:
                if started >= self._last_decrease:
                    self._limit = max(float(self.min_limit), self._limit / 2)
                    self._last_decrease = now
                    self.decreases += 1
            else:
                self._limit = min(float(self.max_limit), self._limit + 1 / self._limit)
            if not overloaded:
                # The baseline follows the fastest answers down at once and drifts up slowly, so a network
                # that got slower for good stops counting as "slow" after a hundred or so answers.
                self._baseline = latency if baseline is None else min(latency, baseline + (latency - baseline) / 64)
            self._cond.notify_all()
