"""Injected failures: the next N matching calls of an endpoint answer something else.

Matching on request parameters lets a test fail one department's user/list
while every other department works, which is how partial outages look on WeCom.
The same faults are written as one-line specs (``parse_fault``) on the command
line (``--fault``) and in ``POST /_sim/faults {"spec": ...}``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_SYNTAX = """\
ENDPOINT[:KEY=VALUE]...  (ENDPOINT as in /cgi-bin/ENDPOINT, or export_file for export downloads)
  errcode=N        answer {"errcode": N} (HTTP 200 unless http_status says otherwise)
  http_status=N    answer with this HTTP status (an HTML error page unless errcode or body is given)
  delay_s=S        wait S seconds first (alone: a slow call that then succeeds)
  truncated        the answer (the real one, or the fault's) cut off halfway
  times=N|forever  how many matching calls it hits (default 1)
  match=NAME=V     only calls whose parameter NAME (query or JSON body) is V; repeatable
  body=TEXT        answer TEXT verbatim; must come last (TEXT may contain ':')
e.g. user/get:errcode=48009:times=3   department/list:http_status=502:times=forever
     user/list:match=department_id=7:errcode=60011   export_file:truncated   user/get:delay_s=2"""


@dataclass
class Fault:
    """What to answer instead: an errcode body, an HTTP status, a raw body, a truncated answer, and/or a delay first.

    A delay-only fault slows the call down and then lets it proceed normally;
    ``truncated`` cuts whatever is answered in half (the real answer when nothing
    replaces it), as a dropped connection behind a proxy does.
    ``times=None`` keeps the fault forever.
    """

    endpoint: str
    errcode: int | None = None
    http_status: int | None = None
    delay_s: float = 0.0
    body: str | None = None
    times: int | None = 1
    match: dict[str, str] = field(default_factory=dict)
    truncated: bool = False

    def __post_init__(self) -> None:
        self.match = {str(k): str(v) for k, v in self.match.items()}
        if self.times is not None and self.times < 1:
            raise ValueError("times must be a positive number of calls or None for forever")
        if self.delay_s < 0:
            raise ValueError("delay_s must not be negative")
        if not (self.replaces_answer or self.truncated or self.delay_s):
            raise ValueError("a fault needs an errcode, an http_status, a body, truncated or a delay")

    @property
    def replaces_answer(self) -> bool:
        return self.errcode is not None or self.http_status is not None or self.body is not None

    def matches(self, endpoint: str, params: dict[str, Any]) -> bool:
        return endpoint == self.endpoint and all(
            key in params and str(params[key]) == value for key, value in self.match.items()
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_endpoint(endpoint: str, known: Collection[str]) -> None:
    """Refuse a fault no call would ever match (``/cgi-bin/user/get``, ``user/gett``), naming the valid ones."""
    if endpoint not in known:
        raise ValueError(f"unknown endpoint {endpoint!r} for a fault; use one of {', '.join(sorted(known))}")


def _number(key: str, value: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{key} must be a number, got {value!r}") from None


def parse_fault(spec: str, known_endpoints: Collection[str]) -> Fault:
    """A fault from ``FAULT_SYNTAX``; ValueError naming the part that is wrong."""
    endpoint, _, rest = spec.strip().partition(":")
    check_endpoint(endpoint, known_endpoints)
    settings: dict[str, Any] = {"match": {}}
    while rest:
        part, _, following = rest.partition(":")
        key, has_value, value = part.partition("=")
        if key == "body" and has_value:
            settings["body"] = rest.partition("=")[2]
            break
        if key == "truncated" and not has_value:
            settings["truncated"] = True
        elif key == "match" and "=" in value and not value.startswith("="):
            name, _, wanted = value.partition("=")
            settings["match"][name] = wanted
        elif key in ("errcode", "http_status") and has_value:
            settings[key] = _number(key, value, int)
        elif key == "delay_s" and has_value:
            settings[key] = _number(key, value, float)
        elif key == "times" and has_value:
            settings[key] = None if value == "forever" else _number(key, value, int)
        else:
            raise ValueError(f"cannot read {part!r} in fault {spec!r}; expected {FAULT_SYNTAX.splitlines()[0]}")
        rest = following
    return Fault(endpoint, **settings)


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
