"""Every exception class of the package: callers branch on the class, operators read the message.

Every WeCom failure arrives as an ``errcode`` in an HTTP 200 body; the client
maps each code to one of these classes so callers branch on the class (retry,
fall back, fail fast) and operators see a message that says what to do.
The other sections hold the errors of the callbacks, the configuration and
the group robot. Stdlib only: every layer imports this module. Messages never
contain the access token, the secret or member data.
"""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying cannot fix it: data that breaks a contract, a wrong setting, a tripped guard.

    The Airflow layer fails such a task at once, in one line, without its retries
    (``wecom.task_failures``); every other error (WeCom busy, a database restarting) is retried.
    """


class DataContractError(PermanentError, ValueError):
    """Records break a rule the tables rely on (ids present, keys unique, parents known); the same data
    fails the same way on every retry. ``rule`` says which rule, ``records`` which records, by id or by
    staged line, never by content (it may hold personal data)."""

    def __init__(self, rule: str, records: str) -> None:
        super().__init__(f"{rule}: {records}")
        self.rule = rule
        self.records = records


class WeComError(Exception):
    """A WeCom API call failed; carries the errcode and the endpoint (no query string)."""

    def __init__(self, message: str, *, errcode: int | None = None, endpoint: str = "") -> None:
        super().__init__(message)
        self.errcode = errcode
        self.endpoint = endpoint


class WeComConfigError(WeComError, PermanentError):
    """Credentials or network setup are wrong (40001, 40013, 60020): retrying cannot help."""


class WeComPermissionError(WeComConfigError):
    """The secret may not call this API (48002, 48009): fall back to another strategy or grant it."""


class WeComScopeError(WeComConfigError):
    """The company's scope names a department WeCom does not list for this secret (deleted, or outside
    its visible range): the ``wecom_companies`` entry needs fixing, retrying cannot help."""


class WeComRateLimitError(WeComError):
    """45009 kept coming after waiting out the block."""


class WeComTransientError(WeComError):
    """Busy, throttled concurrency, HTTP 5xx or network trouble that outlasted the retries."""


class WeComNotFoundError(WeComError):
    """The entity does not exist (60111 user, 60003/60123 department, 40068 tag): it was deleted meanwhile."""


class WeComNoPrivilegeError(WeComError):
    """60011: the entity lies outside the app's visible scope, so a snapshot is incomplete."""


class WeComMalformedResponseError(WeComError):
    """The answer was not JSON or lacked the keys the endpoint documents."""


class QualityCheckError(DataContractError):
    """A snapshot failed its pre-load checks; ``problems`` are the rules broken, each with its offending ids."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("snapshot failed its quality checks, nothing was loaded", "; ".join(problems))
        self.problems = problems


class MassDeletionError(PermanentError):
    """A snapshot would soft-delete more than the guard allows; nothing was changed."""


class WeComExportError(WeComError):
    """An export job failed (status 3), timed out, or a file arrived corrupt or short; names the job."""


# WeCom's answers.


class MalformedAnswerError(Exception):
    """One answer lacks what the endpoint documents; ``what`` says how, e.g. "no 'userlist' list".

    Retried like a busy server inside the transport; ``WeComMalformedResponseError`` once the retries are spent.
    """

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


# Callback and export-file crypto.


class CallbackCryptoError(Exception):
    """A callback or export file failed a crypto check."""


class CryptoConfigError(CallbackCryptoError, PermanentError, ValueError):
    """The token, key or receive id configured for the callback is malformed."""


class SignatureError(CallbackCryptoError):
    """The msg_signature does not match: the request is not from WeCom, or the token differs."""


class DecryptError(CallbackCryptoError):
    """The ciphertext is not base64, not block-aligned, badly padded or badly framed."""


class ReceiveIdError(CallbackCryptoError):
    """The message decrypted but was framed for another receive id (another corp or suite)."""


# Callbacks: parsing, receiving, storing, applying.


class EventParseError(ValueError):
    """The text is not a well-formed WeCom event; the message never names member data."""


class UnsafeXmlError(EventParseError):
    """The XML declares a DTD or entities (billion laughs, external entities)."""


class UnknownConnectionError(LookupError):
    """No callback endpoint for this conn_id (no such connection, or not set up for callbacks)."""


class ReceiverConfigError(PermanentError, ValueError):
    """The connection exists but its callback settings are unusable."""


class CallbackRejected(Exception):
    """The receiver ends a request with ``status``; ``reason`` goes to the log only, the body is the bare phrase."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class EventsTableError(RuntimeError):
    """The events table is missing, incomplete or not writable by this role; the message names the fix."""


class EventApplyError(ValueError):
    """An entity's events cannot be applied; the message names no member data."""


# Configuration: the connection, the companies Variable, the PII policy, the run conf.


class SettingsError(PermanentError, ValueError):
    """A connection field is missing or malformed; the message names the field."""


class ConnectionConfigError(PermanentError, ValueError):
    """A company's connections cannot be used as they are (missing, malformed, a target database that
    refuses for a reason retrying cannot fix); the message names the connection and what to change."""


class TargetUnavailableError(Exception):
    """The target database did not answer (it may be restarting): retried as the DAG's retries allow."""


class CompanyConfigError(PermanentError, ValueError):
    """The companies configuration is malformed; the message names the key."""


class ScopeConfigError(PermanentError, ValueError):
    """A company's department scope option is malformed; the message names the key and the value."""


class PiiConfigError(PermanentError, ValueError):
    """A PII option names an unknown field or mode, or asks to hash without a salt."""


class RunConfError(PermanentError, ValueError):
    """The run conf has unknown keys or values of the wrong type."""


# The group robot.


class RobotError(RuntimeError):
    """The robot refused the message (bad key 93000, too many messages 45009, ...)."""

    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


# The target database as assets and lineage.


class TargetLocationError(PermanentError, ValueError):
    """A target database connection cannot name its tables as assets and lineage datasets (a relative
    SQLite path, a PostgreSQL connection without host or database); the message names the connection."""
