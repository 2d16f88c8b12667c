"""Access tokens and list_id cursors: opaque strings the simulator issues and later judges."""

from __future__ import annotations

import math
import secrets

# Real tokens are long and may reach 512 bytes; a long one catches clients that truncate or log them.
TOKEN_BYTES = 96


class TokenStore:
    """Like WeCom, gettoken returns the same token per secret until it expires, with the seconds it has left.

    Each token remembers the secret it was issued for: its rights are that secret's, looked up at
    every call, so changing what a secret may do applies to the tokens already out.
    """

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}
        self._secret: dict[str, str] = {}
        self._current: dict[str, str] = {}

    def issue(self, secret: str, ttl_s: float, now: float) -> tuple[str, int]:
        current = self._current.get(secret)
        if current is None or self._expiry[current] <= now:
            current = secrets.token_urlsafe(TOKEN_BYTES)
            self._expiry[current] = now + ttl_s
            self._secret[current] = secret
            self._current[secret] = current
        return current, math.ceil(self._expiry[current] - now)

    def is_known(self, token: str) -> bool:
        return token in self._expiry

    def is_expired(self, token: str, now: float) -> bool:
        return self._expiry[token] <= now

    def secret_of(self, token: str) -> str:
        return self._secret[token]

    def expire_all(self) -> None:
        self._expiry = dict.fromkeys(self._expiry, -math.inf)
        self._current.clear()


class CursorBook:
    """list_id cursors: each names a position in the membership rows and lives ``ttl_s`` seconds."""

    def __init__(self) -> None:
        self._cursors: dict[str, tuple[tuple[int, int], float]] = {}

    def issue(self, position: tuple[int, int], now: float, ttl_s: float) -> str:
        self._cursors = {c: entry for c, entry in self._cursors.items() if entry[1] > now}
        cursor = secrets.token_urlsafe(24)
        self._cursors[cursor] = (position, now + ttl_s)
        return cursor

    def resolve(self, cursor: str, now: float) -> tuple[int, int] | None:
        """The position a cursor names, or None when it is unknown, expired or invalidated (50100)."""
        entry = self._cursors.get(cursor)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def invalidate_all(self) -> None:
        self._cursors.clear()
