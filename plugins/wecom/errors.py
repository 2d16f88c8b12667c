"""Typed errors for everything that talks to WeCom or checks its data.

Every WeCom failure arrives as an ``errcode`` in an HTTP 200 body; the client
maps each code to one of these classes so callers branch on the class (retry,
fall back, fail fast) and operators see a message that says what to do.
Messages never contain the access token or the secret.
"""

from __future__ import annotations


class WeComError(Exception):
    """A WeCom API call failed; carries the errcode and the endpoint (no query string)."""

    def __init__(self, message: str, *, errcode: int | None = None, endpoint: str = "") -> None:
        super().__init__(message)
        self.errcode = errcode
        self.endpoint = endpoint


class WeComConfigError(WeComError):
    """Credentials or network setup are wrong (40001, 40013, 60020): retrying cannot help."""


class WeComPermissionError(WeComConfigError):
    """The secret may not call this API (48002, 48009): fall back to another strategy or grant it."""


class WeComRateLimitError(WeComError):
    """45009 kept coming after waiting out the block."""


class WeComTransientError(WeComError):
    """Busy, throttled concurrency, HTTP 5xx or network trouble that outlasted the retries."""


class WeComNotFoundError(WeComError):
    """The entity does not exist (60111 user, 60003/60123 department): it was deleted meanwhile."""


class WeComNoPrivilegeError(WeComError):
    """60011: the entity lies outside the app's visible scope, so a snapshot is incomplete."""


class WeComMalformedResponseError(WeComError):
    """The answer was not JSON or lacked the keys the endpoint documents."""


class QualityCheckError(Exception):
    """A snapshot failed its pre-load checks; ``problems`` names the offending ids."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("snapshot failed quality checks, nothing was loaded:\n- " + "\n- ".join(problems))
        self.problems = problems


class MassDeletionError(Exception):
    """A snapshot would soft-delete more than the guard allows; nothing was changed."""


class WeComExportError(WeComError):
    """An export job failed (status 3), timed out, or a file arrived corrupt or short; names the job."""
