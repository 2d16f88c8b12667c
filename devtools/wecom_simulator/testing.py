"""``running_simulator``: a real simulator on a free local port for the duration of a ``with`` block.

Tests and benchmarks get the base URL for their HTTP client and the live
``SimulatorState`` (same process) to steer and inspect.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wecom_simulator.callbacks import CallbackConfig
from wecom_simulator.config import SimulatorConfig
from wecom_simulator.faults import Fault
from wecom_simulator.model import Org
from wecom_simulator.server import SimulatorServer
from wecom_simulator.state import SimulatorState

# How often a held call looks at the gate: it runs on the server's event loop, so it must not block it.
GATE_POLL_S = 0.01


class FrozenClock:
    """Stands in for ``SimulatorState.clock``: time moves only when the test calls ``advance``.

    Token and cursor lives, rate windows, export jobs and callback delays then end exactly when the
    test says, however slowly a loaded machine runs the calls in between.
    """

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class PauseGate:
    """Stands in for ``SimulatorState.pause``: latency and delay faults wait until ``open()``, however long that takes.

    ``asked`` records the seconds each call was to wait, so a test checks the latency it configured
    without measuring wall time, and decides itself when the calls in flight may answer.
    """

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._open = threading.Event()

    async def pause(self, seconds: float) -> None:
        self.asked.append(seconds)
        while not self._open.is_set():
            await asyncio.sleep(GATE_POLL_S)

    def open(self) -> None:
        self._open.set()


class RunningSimulator:
    """Handle on a started simulator: its URL, its state, and shortcuts for the common knobs."""

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server
        self.state: SimulatorState = server.state
        self.base_url = server.base_url

    def freeze_clock(self) -> FrozenClock:
        """From now on the simulator's clock moves only by the returned clock's ``advance``."""
        clock = FrozenClock()
        self.state.clock = clock
        return clock

    @contextmanager
    def held_pauses(self) -> Iterator[PauseGate]:
        """Latency and delay faults wait for the yielded gate (opened on leaving, so nothing stays held)."""
        gate, previous = PauseGate(), self.state.pause
        self.state.pause = gate.pause
        try:
            yield gate
        finally:
            gate.open()
            self.state.pause = previous

    @property
    def in_flight(self) -> int:
        """API calls the server is handling right now (what ``max_concurrency`` caps)."""
        return self.state.stats()["in_flight"]

    def add_fault(self, endpoint: str, **options: Any) -> Fault:
        """``SimulatorState.add_fault``: errcode, http_status, delay_s, body, times, match, truncated."""
        return self.state.add_fault(endpoint, **options)

    @property
    def calls(self) -> dict[str, int]:
        """Calls received per endpoint, e.g. ``{"gettoken": 1, "user/get": 50}``."""
        return self.state.calls

    @property
    def throttled(self) -> int:
        """How many 45009 answers were given."""
        return self.state.throttled

    def set_regime(self, regime: str, *, callback_form: str | None = None) -> SimulatorConfig:
        """``full``, ``withheld`` or ``ids_only`` (see ``wecom_simulator.rights``); effective for the next call."""
        return self.state.set_regime(regime, callback_form=callback_form)

    def add_app_secret(self, secret: str, kind: str = "new_app") -> SimulatorConfig:
        """Accept ``secret`` in gettoken as an app's: ``new_app`` (created after 2022-06-20) or ``old_app``."""
        return self.state.add_app_secret(secret, kind)

    def configure(self, **settings: Any) -> SimulatorConfig:
        return self.state.configure(**settings)

    def add_export_fault(self, kind: str, times: int = 1) -> None:
        self.state.add_export_fault(kind, times)

    def configure_callbacks(
        self, url: str, token: str, encoding_aes_key: str, ids_only: bool | None = None, **options: Any
    ) -> CallbackConfig:
        return self.state.configure_callbacks(url, token, encoding_aes_key, ids_only, **options)

    def flush_callbacks(self, timeout: float = 10.0) -> None:
        self.state.flush_callbacks(timeout)


@contextmanager
def running_simulator(
    org: Org | None = None, *, host: str = "127.0.0.1", port: int = 0, **settings: Any
) -> Iterator[RunningSimulator]:
    """Serve ``org`` (default: ``generate_org()``) with ``settings`` from ``SimulatorConfig``.

    Settings include corp_id, secret, token_ttl, latency_ms, rate_limit_per_minute,
    rate_limit_window_s, rate_limit_per_hour, max_concurrency, regime, secret_kind,
    app_secrets, app_forbidden_apis, new_ips, callback_form, visible_ranges, out_of_scope_departments,
    list_id_last_cursor and cursor_ttl_s.
    """
    state = SimulatorState(org, **settings)
    try:
        with SimulatorServer(state, host, port) as server:
            yield RunningSimulator(server)
    finally:
        state.close()
