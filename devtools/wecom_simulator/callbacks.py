"""Delivering change_contact callbacks to a receiver, the way WeCom does, warts included.

Every directory edit made through ``SimulatorState`` (Python or ``/_sim/``) is
rendered at once (so the event shows the directory right after that edit),
encrypted and signed with ``wecom.api.crypto.WeComCrypto`` for the corp id, and
queued; a background thread POSTs it to ``url?msg_signature&timestamp&nonce``
so the admin call that caused it returns immediately. A delivery is attempted
``max_attempts`` times in all (WeCom: 3) on a non-200 answer or a timeout.
Options reproduce what receivers must survive: ``duplicates`` (each event is
delivered that many extra times, each copy freshly encrypted), ``shuffle``
(events queued within ``batch_window_s`` go out in random order) and
``delay_s`` (every event arrives late). Due times follow the simulator's clock
(``SimulatorState.clock``), so a test can hold the delay or jump past it.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from wecom.api.crypto import WeComCrypto
from wecom_simulator.events import envelope, render_event
from wecom_simulator.model import Change, Org
from wecom_simulator.tags import TagChange

VERIFY_TIMEOUT_S = 1.0
# While deliveries wait for their due time, how often the clock is read again (it may be a test's).
CLOCK_POLL_S = 0.05


class CallbackVerificationError(Exception):
    """The receiver did not echo the URL-check string back, as WeCom's console requires before saving."""


@dataclass(frozen=True)
class CallbackConfig:
    """Where and how to deliver; the event form is ``SimulatorConfig.callback_form``, a regime setting."""

    url: str
    token: str
    encoding_aes_key: str
    duplicates: int = 0
    shuffle: bool = False
    delay_s: float = 0.0
    timeout_s: float = 5.0
    max_attempts: int = 3
    retry_interval_s: float = 0.2
    batch_window_s: float = 0.1

    def __post_init__(self) -> None:
        if self.duplicates < 0 or self.delay_s < 0 or self.retry_interval_s < 0 or self.batch_window_s < 0:
            raise ValueError("duplicates and durations must not be negative")
        if self.max_attempts < 1 or self.timeout_s <= 0:
            raise ValueError("max_attempts must be positive and timeout_s above zero")

    def public(self) -> dict[str, Any]:
        """The settings without the token and key."""
        return {k: v for k, v in asdict(self).items() if k not in ("token", "encoding_aes_key")}


@dataclass
class Delivery:
    """One event on its way; ``attempts`` and ``statuses`` record what the receiver answered."""

    change_type: str
    xml: str
    due_at: float
    attempts: int = 0
    statuses: list[int | str] = field(default_factory=list)
    delivered: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "change_type": self.change_type,
            "attempts": self.attempts,
            "statuses": list(self.statuses),
            "delivered": self.delivered,
            "xml": self.xml,
        }


class CallbackDispatcher:
    """Queue plus one delivery thread; ``flush`` waits until every queued event was attempted to the end."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._config: CallbackConfig | None = None
        self._crypto: WeComCrypto | None = None
        self._corp_id = ""
        self._queue: list[Delivery] = []
        self._busy = 0
        self._log: list[Delivery] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._session = requests.Session()
        self._random = random.Random()

    @property
    def config(self) -> CallbackConfig | None:
        return self._config

    def configure(self, config: CallbackConfig | None, corp_id: str, *, verify: bool = False) -> None:
        """Deliver future events with ``config`` (None stops callbacks); ``verify`` runs WeCom's URL check first."""
        crypto = WeComCrypto(config.token, config.encoding_aes_key, corp_id) if config else None
        if config is not None and crypto is not None and verify:
            self._verify_url(config, crypto)
        with self._cond:
            self._config, self._crypto, self._corp_id = config, crypto, corp_id
            if config is not None and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wecom-sim-callbacks", daemon=True)
                self._thread.start()

    def _verify_url(self, config: CallbackConfig, crypto: WeComCrypto) -> None:
        echo = str(secrets.randbelow(10**18))
        encrypted, signature, timestamp, nonce = crypto.encrypt(echo)
        params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": encrypted}
        try:
            answer = requests.get(config.url, params=params, timeout=VERIFY_TIMEOUT_S)
        except requests.RequestException as error:
            raise CallbackVerificationError(f"URL check failed: {type(error).__name__}") from None
        if answer.status_code != 200 or answer.text != echo:
            raise CallbackVerificationError(f"URL check failed: HTTP {answer.status_code}, echo did not match")

    def publish(self, changes: list[Change | TagChange], org: Org, *, ids_only: bool) -> None:
        """Render and queue ``changes``; the caller holds the state lock, so events see this exact edit."""
        with self._cond:
            config = self._config
            if config is None:
                return
            now = self._clock()
            for change in changes:
                xml = render_event(change, org, self._corp_id, ids_only=ids_only, create_time=int(time.time()))
                if xml is not None:
                    copies = [Delivery(change.kind, xml, now + config.delay_s) for _ in range(1 + config.duplicates)]
                    self._queue.extend(copies)
                    self._log.extend(copies)
            self._cond.notify_all()

    def _next_batch(self) -> list[Delivery] | None:
        """Wait for due deliveries; with ``shuffle``, let a batch gather first. None once closed."""
        with self._cond:
            while not self._closed:
                config = self._config
                shuffle = config is not None and config.shuffle
                now = self._clock()
                due = [d for d in self._queue if d.due_at <= now]
                gathered_at = min((d.due_at for d in due), default=now)
                if shuffle and config is not None:
                    gathered_at += config.batch_window_s
                if due and now >= gathered_at:
                    self._queue = [d for d in self._queue if d.due_at > now]
                    self._busy += len(due)
                    if shuffle:
                        self._random.shuffle(due)
                    return due
                # idle: until publish or close notifies; waiting: until the next due time, reading the clock again
                wake = gathered_at if due else min((d.due_at for d in self._queue), default=None)
                self._cond.wait(None if wake is None else min(max(wake - now, 0.001), CLOCK_POLL_S))
            return None

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            for delivery in batch:
                self._deliver(delivery)
            with self._cond:
                self._busy -= len(batch)
                self._cond.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        with self._cond:
            config, crypto, corp_id = self._config, self._crypto, self._corp_id
        if config is None or crypto is None:
            return
        encrypted, signature, timestamp, nonce = crypto.encrypt(delivery.xml)
        params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
        body = envelope(corp_id, encrypted).encode("utf-8")
        for attempt in range(config.max_attempts):
            if attempt:
                time.sleep(config.retry_interval_s)
            try:
                answer = self._session.post(
                    config.url, params=params, data=body, headers={"Content-Type": "text/xml"}, timeout=config.timeout_s
                )
                outcome: int | str = answer.status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
            with self._cond:
                delivery.attempts += 1
                delivery.statuses.append(outcome)
                delivery.delivered = outcome == 200
            if outcome == 200:
                return

    def flush(self, timeout: float) -> None:
        """Block until nothing is queued or being delivered; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._queue) + self._busy} callbacks still pending after {timeout}s")
                self._cond.wait(remaining)

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return [d.summary() for d in self._log]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2 * VERIFY_TIMEOUT_S)
        self._session.close()
