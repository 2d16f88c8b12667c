"""Fixed-window frequency limits per API, as WeCom enforces them with 45009.

A window opens with the first call after the previous one closed and lasts
``window_s``; once a window's count passes the limit every further call in it
is refused, so the block lasts until the window ends. Refused calls count too:
hammering a blocked API does not shorten the block.
"""

from __future__ import annotations


class FixedWindows:
    """Call counts per (API, limit) in the current window of each limit."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, float], list[float]] = {}

    def admit(self, endpoint: str, limits: list[tuple[int, float]], now: float) -> bool:
        """Count one call against every limit; False when any limit is exceeded in its window."""
        admitted = True
        for limit, window_s in limits:
            window = self._windows.setdefault((endpoint, window_s), [now, 0])
            if now >= window[0] + window_s:
                window[0], window[1] = now, 0
            window[1] += 1
            admitted = admitted and window[1] <= limit
        return admitted

    def reset(self) -> None:
        self._windows.clear()
