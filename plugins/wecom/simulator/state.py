"""Everything a running simulator knows, shared by the HTTP server thread and the test thread.

One re-entrant lock guards the directory, tokens, cursors, windows, faults and
counters: the server handles requests on its event-loop thread while tests
inspect and edit the same object from theirs. Handlers hold the lock only
while building an answer, never across an ``await``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from wecom.simulator.callbacks import CallbackConfig, CallbackDispatcher
from wecom.simulator.exports import ExportJobs
from wecom.simulator.faults import Fault, FaultBook
from wecom.simulator.model import Change, Org
from wecom.simulator.org import generate_org
from wecom.simulator.throttle import FixedWindows
from wecom.simulator.tokens import CursorBook, TokenStore

PERMISSION_MODES = ("full", "restricted", "no_sensitive")
LAST_CURSOR_STYLES = ("empty", "missing")


@dataclass(frozen=True)
class SimulatorConfig:
    """Behaviour knobs; every one is settable from Python, the CLI and ``PATCH /_sim/config``.

    ``permission_mode``: ``full``; ``restricted`` (a contact-sync IP added after
    2022-08-15: only department/simplelist and user/list_id answer, the rest 48009);
    ``no_sensitive`` (an app created after 2022-06-20: avatar, gender, mobile,
    email, biz_mail, qr_code and address are absent).
    ``out_of_scope_departments``: departments outside the app's visible scope;
    they still appear in the department lists, but reading them or their
    members answers 60011 and list_id leaves their rows out.
    ``list_id_last_cursor``: how the last list_id page ends, ``next_cursor: ""``
    (``empty``) or no ``next_cursor`` at all (``missing``); WeCom does both.
    """

    corp_id: str = "wwtestcorp"
    secret: str = "s3cret-value"  # noqa: S105 (the simulator's published test secret)
    token_ttl: float = 7200.0
    latency_ms: float = 0.0
    rate_limit_per_minute: int | None = None
    rate_limit_window_s: float = 60.0
    rate_limit_per_hour: int | None = None
    rate_limit_hour_window_s: float = 3600.0
    max_concurrency: int | None = None
    permission_mode: str = "full"
    out_of_scope_departments: frozenset[int] = field(default_factory=frozenset)
    list_id_last_cursor: str = "empty"
    cursor_ttl_s: float = 600.0
    export_queue_s: float = 0.1
    export_run_s: float = 0.2
    export_url_ttl_s: float = 7200.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_of_scope_departments", frozenset(int(d) for d in self.out_of_scope_departments))
        if self.permission_mode not in PERMISSION_MODES:
            raise ValueError(f"permission_mode must be one of {PERMISSION_MODES}, got {self.permission_mode!r}")
        if self.list_id_last_cursor not in LAST_CURSOR_STYLES:
            raise ValueError(f"list_id_last_cursor must be one of {LAST_CURSOR_STYLES}")
        for name in ("rate_limit_per_minute", "rate_limit_per_hour", "max_concurrency"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive or None, got {value}")
        for name in ("token_ttl", "rate_limit_window_s", "rate_limit_hour_window_s", "cursor_ttl_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.latency_ms < 0 or self.export_queue_s < 0 or self.export_run_s < 0:
            raise ValueError("latency and export durations must not be negative")

    def rate_limits(self) -> list[tuple[int, float]]:
        pairs = (
            (self.rate_limit_per_minute, self.rate_limit_window_s),
            (self.rate_limit_per_hour, self.rate_limit_hour_window_s),
        )
        return [(limit, window) for limit, window in pairs if limit is not None]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_of_scope_departments"] = sorted(self.out_of_scope_departments)
        return data

    @classmethod
    def setting_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


class SimulatorState:
    """The live simulator: directory, config, tokens, cursors, rate windows, faults and counters."""

    def __init__(self, org: Org | None = None, **settings: Any) -> None:
        self.org = org if org is not None else generate_org()
        self.config = SimulatorConfig(**settings)
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.monotonic
        self.tokens = TokenStore()
        self.cursors = CursorBook()
        self.faults = FaultBook()
        self.windows = FixedWindows()
        self.exports = ExportJobs()
        self.callbacks = CallbackDispatcher()
        self._calls: Counter[str] = Counter()
        self._throttled: Counter[str] = Counter()
        self._in_flight = 0

    # -- configuration -----------------------------------------------------------------------------

    def configure(self, **settings: Any) -> SimulatorConfig:
        """Change settings while running; unknown names raise TypeError."""
        with self.lock:
            self.config = replace(self.config, **settings)
            return self.config

    def set_permission_mode(self, mode: str) -> None:
        self.configure(permission_mode=mode)

    def set_out_of_scope_departments(self, department_ids: Iterable[int]) -> None:
        self.configure(out_of_scope_departments=frozenset(department_ids))

    def add_fault(
        self,
        endpoint: str,
        *,
        errcode: int | None = None,
        http_status: int | None = None,
        delay_s: float = 0.0,
        body: str | None = None,
        times: int | None = 1,
        match: dict[str, Any] | None = None,
    ) -> Fault:
        fault = Fault(endpoint, errcode, http_status, delay_s, body, times, dict(match or {}))
        with self.lock:
            return self.faults.add(fault)

    def take_fault(self, endpoint: str, params: dict[str, Any]) -> Fault | None:
        with self.lock:
            return self.faults.take(endpoint, params)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def add_export_fault(self, kind: str, times: int = 1) -> None:
        """The next ``times`` export jobs get ``wrong_md5``, ``truncated`` downloads or end ``failed`` (3)."""
        self.exports.add_fault(kind, times)

    def configure_callbacks(
        self,
        url: str,
        token: str,
        encoding_aes_key: str,
        ids_only: bool = False,
        *,
        verify: bool = False,
        **options: Any,
    ) -> CallbackConfig:
        """Post a change_contact event for every later directory edit; ``options`` are ``CallbackConfig``'s.

        ``verify=True`` first runs WeCom's URL check (GET with echostr) and raises
        ``CallbackVerificationError`` if the receiver does not echo correctly.
        """
        config = CallbackConfig(url, token, encoding_aes_key, ids_only, **options)
        self.callbacks.configure(config, self.config.corp_id, verify=verify)
        return config

    def disable_callbacks(self) -> None:
        self.callbacks.configure(None, self.config.corp_id)

    def flush_callbacks(self, timeout: float = 10.0) -> None:
        """Wait until every queued callback was delivered or gave up; TimeoutError otherwise."""
        self.callbacks.flush(timeout)

    def close(self) -> None:
        """Release what outlives requests: the callback thread and export files on disk."""
        self.callbacks.close()
        self.exports.close()

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 from now on, as after a secret rotation or expiry."""
        with self.lock:
            self.tokens.expire_all()

    def invalidate_cursors(self) -> None:
        """Every list_id cursor issued so far answers 50100 from now on."""
        with self.lock:
            self.cursors.invalidate_all()

    # -- counters and request gates ------------------------------------------------------------------

    @property
    def calls(self) -> dict[str, int]:
        with self.lock:
            return dict(self._calls)

    @property
    def throttled(self) -> int:
        """How many 45009 answers were given."""
        with self.lock:
            return sum(self._throttled.values())

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(self._calls),
                "throttled": sum(self._throttled.values()),
                "throttled_by_endpoint": dict(self._throttled),
                "in_flight": self._in_flight,
                "members": len(self.org.users),
                "departments": len(self.org.departments),
            }

    def reset_stats(self) -> None:
        with self.lock:
            self._calls.clear()
            self._throttled.clear()
            self.windows.reset()

    def record_call(self, endpoint: str) -> None:
        with self.lock:
            self._calls[endpoint] += 1

    def enter(self) -> bool:
        """Admit one more request in flight; False (answer 45033) when the concurrency cap is exceeded."""
        with self.lock:
            cap = self.config.max_concurrency
            if cap is not None and self._in_flight >= cap:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self._in_flight -= 1

    def admit(self, endpoint: str) -> bool:
        """Count a call against the frequency limits; False (answer 45009) when over a limit."""
        with self.lock:
            admitted = self.windows.admit(endpoint, self.config.rate_limits(), self.clock())
            if not admitted:
                self._throttled[endpoint] += 1
            return admitted

    # -- directory edits (each one is announced as change_contact callbacks when configured) ----------

    def _edit(self, edit: Callable[..., list[Change]], *args: Any) -> list[Change]:
        with self.lock:
            changes = edit(*args)
            self.callbacks.publish(changes, self.org)
            return changes

    def add_user(self, fields: dict[str, Any]) -> list[Change]:
        return self._edit(self.org.add_user, fields)

    def update_user(self, userid: str, changes: dict[str, Any]) -> list[Change]:
        return self._edit(self.org.update_user, userid, changes)

    def delete_user(self, userid: str) -> list[Change]:
        return self._edit(self.org.delete_user, userid)

    def add_department(self, fields: dict[str, Any]) -> list[Change]:
        return self._edit(self.org.add_department, fields)

    def update_department(self, dept_id: int, changes: dict[str, Any]) -> list[Change]:
        return self._edit(self.org.update_department, dept_id, changes)

    def delete_department(self, dept_id: int) -> list[Change]:
        return self._edit(self.org.delete_department, dept_id)
