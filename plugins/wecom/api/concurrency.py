"""How many WeCom calls may be in flight at once, adjusted to what the server answers.

WeCom answers 45033 when a corp has too many calls in flight; unlike the
frequency limits (``wecom.api.budget``) that number is not published, so it is
found by probing, per client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Slot:
    """One call admitted by ``AdaptiveConcurrency``; say ``overloaded()`` when WeCom answered 45033."""

    def __init__(self, gate: AdaptiveConcurrency, started: float) -> None:
        self._gate = gate
        self.started = started
        self._overloaded = False

    def overloaded(self) -> None:
        self._overloaded = True

    def restart(self) -> None:
        """Start timing now: a wait between admission and sending (for the rate budget) is not latency."""
        self.started = self._gate._clock()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
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
