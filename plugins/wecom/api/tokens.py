"""Access tokens: held so that no repr or traceback shows them, cached per secret.

Each secret has its own token, valid about two hours, and calling gettoken
often gets the caller throttled, so clients that share a ``TokenCache`` fetch
one token per secret per lifetime. The cache is an object handed to the
client (the hook shares one between the clients it builds), never a
module-level registry; tokens never leave the process.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class Secret:
    """Holds a secret or token so that a stray repr or a traceback with locals shows no value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


@dataclass
class TokenEntry:
    """The cached token of one (base_url, corp_id, secret); ``lock`` serializes its renewal."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    token: Secret | None = None
    refresh_at: float = 0.0


class TokenCache:
    """Tokens per (base_url, corp_id, secret); ``clock`` is monotonic time, injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[tuple[str, str, str], TokenEntry] = {}
        self._lock = threading.Lock()

    def entry(self, base_url: str, corp_id: str, secret: str) -> TokenEntry:
        """The entry for this secret (keyed by its hash, so the cache holds no secret as a key)."""
        key = (base_url, corp_id, hashlib.sha256(secret.encode()).hexdigest())
        with self._lock:
            return self._entries.setdefault(key, TokenEntry())
