"""Everything a running simulator knows, shared by the HTTP server thread and the test thread.

One re-entrant lock guards the directory, tokens, cursors, windows, faults and
counters: the server handles requests on its event-loop thread while tests
inspect and edit the same object from theirs. Handlers hold the lock only
while building an answer, never across an ``await``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from wecom_simulator import tags
from wecom_simulator.callbacks import CallbackConfig, CallbackDispatcher
from wecom_simulator.config import SimulatorConfig
from wecom_simulator.exports import ExportJobs
from wecom_simulator.faults import Fault, FaultBook
from wecom_simulator.model import Change, Org, Tag
from wecom_simulator.org import generate_org
from wecom_simulator.throttle import FixedWindows
from wecom_simulator.tokens import CursorBook, TokenStore


class SimulatorState:
    """The live simulator: directory, config, tokens, cursors, rate windows, faults and counters."""

    def __init__(self, org: Org | None = None, **settings: Any) -> None:
        self.org = org if org is not None else generate_org()
        self.config = SimulatorConfig.create(**settings)
        self.lock = threading.RLock()
        # What a test may replace to steer time: ``clock`` (seconds) ages tokens, cursors, rate windows,
        # export jobs and callback due times; ``pause`` is how latency and delay faults wait.
        self.clock: Callable[[], float] = time.monotonic
        self.pause: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.tokens = TokenStore()
        self.cursors = CursorBook()
        self.faults = FaultBook()
        self.windows = FixedWindows()
        self.exports = ExportJobs()
        self.callbacks = CallbackDispatcher(clock=lambda: self.clock())  # noqa: PLW0108 (self.clock may be replaced)
        self._calls: Counter[str] = Counter()
        self._throttled: Counter[str] = Counter()
        self._in_flight = 0

    # -- configuration -----------------------------------------------------------------------------

    def configure(self, **settings: Any) -> SimulatorConfig:
        """Change settings while running (``regime`` too, see ``SimulatorConfig``); unknown names raise TypeError."""
        with self.lock:
            self.config = self.config.updated(**settings)
            return self.config

    def set_regime(self, regime: str, *, callback_form: str | None = None) -> SimulatorConfig:
        """Switch to a named regime (``rights.REGIMES``) and optionally the callback form; takes effect at once."""
        settings = {} if callback_form is None else {"callback_form": callback_form}
        return self.configure(regime=regime, **settings)

    def add_app_secret(self, secret: str, kind: str = "new_app") -> SimulatorConfig:
        """Let ``secret`` get tokens as an app's (``new_app``: created after 2022-06-20, or ``old_app``)."""
        with self.lock:
            return self.configure(app_secrets={**self.config.app_secrets, secret: kind})

    def set_visible_range(self, secret: str, department_ids: Iterable[int] | None) -> SimulatorConfig:
        """Let the app ``secret`` see only the subtrees of ``department_ids`` (None: the whole company again)."""
        with self.lock:
            ranges = dict(self.config.visible_ranges)
            if department_ids is None:
                ranges.pop(secret, None)
            else:
                ranges[secret] = frozenset(department_ids)
            return self.configure(visible_ranges=ranges)

    def visible_to(self, secret: str) -> frozenset[int] | None:
        """The departments ``secret`` may see; None for the whole company."""
        ids = self.config.visible_ranges.get(secret)
        return None if ids is None else self.org.subtrees(ids)

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
        truncated: bool = False,
    ) -> Fault:
        return self.inject(Fault(endpoint, errcode, http_status, delay_s, body, times, dict(match or {}), truncated))

    def inject(self, fault: Fault) -> Fault:
        """Add a fault built elsewhere (``faults.parse_fault``); it applies after those added before."""
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
        ids_only: bool | None = None,
        *,
        verify: bool = False,
        **options: Any,
    ) -> CallbackConfig:
        """Post a change_contact event for every later directory edit; ``options`` are ``CallbackConfig``'s.

        ``ids_only`` sets ``callback_form`` (None keeps it). ``verify=True`` first
        runs WeCom's URL check (GET with echostr) and raises
        ``CallbackVerificationError`` if the receiver does not echo correctly.
        """
        config = CallbackConfig(url, token, encoding_aes_key, **options)
        self.callbacks.configure(config, self.config.corp_id, verify=verify)
        if ids_only is not None:
            self.configure(callback_form="ids_only" if ids_only else "full")
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
                "tags": len(self.org.tags),
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

    def _edit(self, edit: Callable[..., list[Any]], *args: Any) -> list[Any]:
        with self.lock:
            changes = edit(*args)
            self.callbacks.publish(changes, self.org, ids_only=self.config.callback_form == "ids_only")
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

    # -- tags (only membership edits are called back, as update_tag) ----------------------------------

    def add_tag(self, fields: dict[str, Any]) -> Tag:
        with self.lock:
            return tags.add_tag(self.org, fields)

    def rename_tag(self, tag_id: int, fields: dict[str, Any]) -> Tag:
        with self.lock:
            return tags.rename_tag(self.org, tag_id, fields)

    def delete_tag(self, tag_id: int) -> Tag:
        with self.lock:
            return tags.delete_tag(self.org, tag_id)

    def add_tag_members(self, tag_id: int, fields: dict[str, Any]) -> list[tags.TagChange]:
        """``{"userlist"?, "partylist"?}`` join the tag; one update_tag event says which were new."""
        return self._edit(tags.add_tag_members, self.org, tag_id, fields)

    def remove_tag_members(self, tag_id: int, fields: dict[str, Any]) -> list[tags.TagChange]:
        return self._edit(tags.remove_tag_members, self.org, tag_id, fields)
