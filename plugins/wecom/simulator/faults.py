"""Injected failures: the next N matching calls of an endpoint answer something else.

Matching on request parameters lets a test fail one department's user/list
while every other department works, which is how partial outages look on WeCom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Fault:
    """What to answer instead: an errcode body, an HTTP status, a raw body, and/or a delay first.

    A delay-only fault slows the call down and then lets it proceed normally.
    ``times=None`` keeps the fault forever.
    """

    endpoint: str
    errcode: int | None = None
    http_status: int | None = None
    delay_s: float = 0.0
    body: str | None = None
    times: int | None = 1
    match: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.match = {str(k): str(v) for k, v in self.match.items()}
        if self.times is not None and self.times < 1:
            raise ValueError("times must be a positive number of calls or None for forever")
        if self.delay_s < 0:
            raise ValueError("delay_s must not be negative")
        if self.errcode is None and self.http_status is None and self.body is None and not self.delay_s:
            raise ValueError("a fault needs an errcode, an http_status, a body or a delay")

    @property
    def replaces_answer(self) -> bool:
        return self.errcode is not None or self.http_status is not None or self.body is not None

    def matches(self, endpoint: str, params: dict[str, Any]) -> bool:
        return endpoint == self.endpoint and all(
            key in params and str(params[key]) == value for key, value in self.match.items()
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    """Faults in the order they were added; the first match wins and uses up one of its ``times``."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def take(self, endpoint: str, params: dict[str, Any]) -> Fault | None:
        for fault in self._faults:
            if fault.matches(endpoint, params):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()

    def pending(self) -> list[Fault]:
        return list(self._faults)
