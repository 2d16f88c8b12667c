"""The adaptive gate: how many calls may be in flight, halved on 45033 or slow answers, raised on good ones."""

from __future__ import annotations

import threading

import pytest

from wecom.api.concurrency import AdaptiveConcurrency


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
    assert admitted.wait(10.0)
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
