"""Running the simulator app under uvicorn in a background thread (tests, benchmarks and the CLI alike).

The socket is bound and listening before uvicorn starts, so port 0 picks a
free port and ``base_url`` is known, and connectable (connections wait in the
backlog), immediately: no parsing logs, no racing. uvicorn never runs in the main
thread, so it installs no signal handlers: the CLI owns Ctrl-C (``stop_signal``).
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from wecom_simulator.app import create_app
from wecom_simulator.state import SimulatorState

# Generous: a loaded machine may take seconds to schedule the new thread; it is a deadline, not a wait.
STARTUP_TIMEOUT_S = 60.0


class SimulatorServer:
    """One uvicorn server for one ``SimulatorState``; ``start``/``stop`` or use it as a context manager."""

    def __init__(self, state: SimulatorState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._socket.listen(2048)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,  # WeCom judges the TCP peer; X-Forwarded-For must not pick the caller IP
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> SimulatorServer:
        """Serve from a daemon thread and return once the server accepts connections."""
        self._thread = threading.Thread(target=self._serve, name="wecom-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the WeCom simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STARTUP_TIMEOUT_S)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
