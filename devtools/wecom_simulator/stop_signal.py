"""Ctrl-C and SIGTERM for ``python -m wecom_simulator``: a request to stop, never an exception thrown mid-step.

Python's default SIGINT handler raises ``KeyboardInterrupt`` wherever the main
thread happens to be. The simulator's start hands SIGINT between three owners
(Python's default, asyncio's runner, uvicorn's own capture) and the interrupt can
land in code that swallows exceptions (a weakref callback, a destructor, a
coroutine not yet awaited): the process then either serves on after Ctrl-C or
exits without its closing line. Here a signal only writes a byte to a pipe; the
main thread reads the pipe when it is ready to wait, and checks ``requested``
between the steps of the start, so every moment of its life ends the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignal:
    """Installed first thing in ``main``; ``wait()`` blocks until Ctrl-C or SIGTERM, ``requested`` says if one came."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self.requested = False

    def install(self) -> StopSignal:
        for sig in SIGNALS:
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        # No lock and no exception in a handler: it may interrupt code holding either.
        self.requested = True
        self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full: a wake-up is pending anyway
            os.write(self._write, b".")

    def wait(self) -> None:
        """Block until a stop is requested (returns at once if one already was)."""
        while not self.requested:
            os.read(self._read, 1)

    def unless_stopped(self, work: Callable[[], T]) -> T | None:
        """``work()``'s result, or None as soon as a stop is requested first.

        ``work`` runs in a daemon thread that is left behind on a stop, so it must hold nothing
        that needs releasing (generating the company: seconds for 100,000 members).
        """
        result: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                result.append(work())
            except BaseException as error:  # re-raised in the main thread
                failure.append(error)
            finally:
                self._poke()

        threading.Thread(target=run, name="wecom-sim-start", daemon=True).start()
        while not (result or failure or self.requested):
            os.read(self._read, 1)
        if failure:
            raise failure[0]
        return None if self.requested else result[0]
