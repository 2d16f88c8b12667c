"""Waiting for something to happen in another thread or process: poll with a generous deadline, never a fixed sleep.

A fixed ``sleep`` is either too short on a loaded machine (the test flakes) or wastes time on an idle one;
``wait_for`` returns as soon as the probe holds and fails, naming what it waited for, only at the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
# What "generous" means here: far beyond anything a loaded 2-core machine takes for a local step.
DEADLINE_S = 60.0


def wait_for(
    probe: Callable[[], T | None],
    timeout_s: float,
    what: str,
    state: Callable[[], object] | None = None,
    interval_s: float = 0.02,
) -> T:
    """Poll ``probe`` until it returns something truthy, and return that; fail naming ``what`` (and ``state()``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s" + (f"; {state()}" if state else ""))
        time.sleep(interval_s)
