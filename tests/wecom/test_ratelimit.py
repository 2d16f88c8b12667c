"""The limiter keeps any N+1 calls of one API more than a window apart, as a fixed-window server needs."""

from __future__ import annotations

import random
import threading
import time

import pytest

from wecom.ratelimit import AdaptiveConcurrency, RateLimiter, RateLimits

WINDOW = 0.2


def minute_only(per_window: int) -> RateLimiter:
    return RateLimiter(RateLimits(per_minute=per_window, per_hour=None, minute_s=WINDOW))


@pytest.mark.parametrize(
    "kwargs",
    [{"per_minute": 0}, {"per_hour": -1}, {"minute_s": 0.0}, {"hour_s": -1.0}],
)
def test_invalid_limits_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimits(**kwargs)


def test_windows_skip_disabled_limits() -> None:
    assert RateLimits().windows() == [(10_000, 60.0), (150_000, 3600.0)]
    assert RateLimits(per_minute=None).windows() == [(150_000, 3600.0)]
    assert RateLimits(per_minute=None, per_hour=None).windows() == []


def test_calls_under_the_limit_do_not_wait() -> None:
    limiter = minute_only(5)
    started = time.monotonic()
    for _ in range(5):
        with limiter.acquire("user/get"):
            pass
    assert time.monotonic() - started < WINDOW / 2


def test_next_call_waits_a_window_after_the_oldest_finished() -> None:
    limiter = minute_only(3)
    finished = []
    for _ in range(3):
        with limiter.acquire("user/get"):
            pass
        finished.append(time.monotonic())
    with limiter.acquire("user/get"):
        admitted = time.monotonic()
    assert admitted >= finished[0] + WINDOW
    assert admitted < finished[0] + WINDOW + 0.1


def test_calls_in_flight_count_until_they_finish() -> None:
    limiter = minute_only(2)
    first, second = limiter.acquire("user/get"), limiter.acquire("user/get")
    admitted: list[float] = []

    def third_call() -> None:
        with limiter.acquire("user/get"):
            admitted.append(time.monotonic())

    waiter = threading.Thread(target=third_call)
    waiter.start()
    time.sleep(WINDOW * 1.5)
    assert admitted == [], "a third call started while two were in flight"
    first.release()
    released = time.monotonic()
    first.release()  # a second release must not free another slot
    waiter.join(timeout=2)
    assert admitted and admitted[0] >= released + WINDOW * 0.99
    second.release()


def test_endpoints_have_separate_budgets() -> None:
    limiter = minute_only(1)
    started = time.monotonic()
    for endpoint in ("user/get", "user/list", "gettoken"):
        with limiter.acquire(endpoint):
            pass
    assert time.monotonic() - started < WINDOW / 2


def test_hour_window_is_enforced_too() -> None:
    limiter = RateLimiter(RateLimits(per_minute=None, per_hour=2, hour_s=WINDOW))
    started = time.monotonic()
    for _ in range(3):
        with limiter.acquire("user/get"):
            pass
    assert time.monotonic() - started >= WINDOW


def test_concurrent_calls_never_put_more_than_n_in_one_window() -> None:
    """Wherever in [admitted, finished] the server sees each call, no WINDOW-long span holds N+1."""
    limit, threads, calls_per_thread = 4, 4, 4
    limiter = minute_only(limit)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(calls_per_thread):
            with limiter.acquire("user/get"):
                admitted = time.monotonic()
                time.sleep(random.uniform(0, 0.01))
                finished = time.monotonic()
            with lock:
                spans.append((admitted, finished))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=10)
    assert len(spans) == threads * calls_per_thread
    for seen_at in (min, max, random.uniform):
        arrivals = sorted(seen_at(a, f) for a, f in spans)
        assert all(arrivals[i + limit] - arrivals[i] >= WINDOW for i in range(len(arrivals) - limit))


def test_ten_thousand_calls_cost_little_cpu() -> None:
    limiter = RateLimiter()
    started = time.process_time()
    for _ in range(10_000):
        with limiter.acquire("user/get"):
            pass
    assert time.process_time() - started < 1.0


# --- adaptive concurrency ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def answer(gate: AdaptiveConcurrency, clock: FakeClock, latency: float, *, overloaded: bool = False) -> None:
    with gate.slot() as slot:
        clock.now += latency
        if overloaded:
            slot.overloaded()


def test_gate_admits_at_most_limit_calls_in_flight() -> None:
    gate = AdaptiveConcurrency(2)
    first, second = gate.slot(), gate.slot()
    admitted = threading.Event()
    thread = threading.Thread(target=lambda: (gate.slot(), admitted.set()))
    thread.start()
    assert not admitted.wait(0.1)
    with first:
        pass
    assert admitted.wait(1.0)
    thread.join()
    with second:
        pass


def test_45033_halves_the_limit_once_per_round_trip() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(16, clock=clock)
    early = [gate.slot() for _ in range(4)]
    clock.now += 0.02
    for slot in early:  # all sent under the old limit: one signal, one halving
        slot.overloaded()
        with slot:
            pass
    assert (gate.limit, gate.decreases) == (8, 1)
    answer(gate, clock, 0.02, overloaded=True)  # sent after the decrease: halves again
    assert (gate.limit, gate.decreases) == (4, 2)


def test_good_answers_raise_the_limit_by_about_one_per_round() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(16, clock=clock)
    answer(gate, clock, 0.02, overloaded=True)
    assert gate.limit == 8
    for _ in range(8):
        answer(gate, clock, 0.02)
    assert gate.limit == 8  # 8 + 8 * (1/8 shrinking) lands just under 9
    for _ in range(12):
        answer(gate, clock, 0.02)
    assert gate.limit == 10
    for _ in range(500):
        answer(gate, clock, 0.02)
    assert gate.limit == 16, "never above the ceiling"


def test_slow_answers_back_off_relative_to_the_fastest_seen() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(32, clock=clock)
    for _ in range(5):
        answer(gate, clock, 0.02)
    answer(gate, clock, 0.15)  # under 4 x 20 ms + 100 ms: not slow
    assert gate.decreases == 0
    answer(gate, clock, 0.5)
    assert (gate.limit, gate.decreases) == (16, 1)


def test_limit_never_drops_below_the_floor_and_a_slower_network_stops_counting_as_slow() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(8, min_limit=2, clock=clock)
    answer(gate, clock, 0.01)
    for _ in range(200):  # the network got slower for good
        answer(gate, clock, 0.6)
    assert gate.limit >= 2
    decreases = gate.decreases
    for _ in range(50):
        answer(gate, clock, 0.6)
    assert gate.decreases == decreases, "0.6 s is the new normal"
    assert gate.limit > 2


def test_invalid_gate_bounds_are_rejected() -> None:
    with pytest.raises(ValueError):
        AdaptiveConcurrency(4, min_limit=5)
    with pytest.raises(ValueError):
        AdaptiveConcurrency(0)
