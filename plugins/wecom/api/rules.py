"""What the transport does about each failure, and the advice an operator reads.

WeCom reports every failure as an ``errcode`` in an HTTP 200 body, so one table
maps each code to an action (fail, retry, renew the token, wait out a 45009
block) and to the typed error and advice. Answers that are not what WeCom
documents (not JSON, cut short, keys missing) are retried like a -1: a proxy
hiccup or a truncated body is as passing as a busy server.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

import orjson
import requests

from wecom.errors import (
    WeComConfigError,
    WeComError,
    WeComMalformedResponseError,
    WeComNoPrivilegeError,
    WeComNotFoundError,
    WeComPermissionError,
    WeComRateLimitError,
    WeComTransientError,
)

INVALID_CURSOR = 50100
RATE_LIMITED = 45009
TOO_CONCURRENT = 45033
_CALLER_IP = re.compile(r"from ip: ([0-9A-Fa-f.:]+)")


class Action(enum.Enum):
    FAIL = "fail"
    RETRY = "retry with backoff"
    RENEW = "renew the token and retry once"
    WAIT = "wait out the block"


@dataclass(frozen=True)
class Rule:
    """What to do about one kind of failure; ``advice`` is a str.format template for the operator."""

    action: Action
    error: type[WeComError]
    advice: str


@dataclass(frozen=True)
class Failure:
    """One failed attempt, described without the URL."""

    rule: Rule
    errcode: int | None = None
    errmsg: str = ""
    detail: str = ""

    def advice(self, endpoint: str, redacted_errmsg: str, *, attempts: int, waits: int, rate_limit_wait: float) -> str:
        """The rule's advice filled in; ``redacted_errmsg`` is the errmsg with secrets removed."""
        return self.rule.advice.format(
            endpoint=endpoint,
            errcode=self.errcode,
            errmsg=redacted_errmsg,
            ip=_caller_ip(self.errmsg),
            detail=self.detail,
            attempts=attempts,
            waits=waits,
            rate_limit_wait=rate_limit_wait,
        )


def _fail(error: type[WeComError], advice: str) -> Rule:
    return Rule(Action.FAIL, error, advice)


def _retry(advice: str) -> Rule:
    return Rule(
        Action.RETRY, WeComTransientError, advice + ", still failing after {attempts} attempts; try again later"
    )


def _renew(what: str) -> Rule:
    return Rule(
        Action.RENEW,
        WeComError,
        "{endpoint} rejected a freshly fetched access token (errcode {errcode}, " + what + "); "
        "check whether something else keeps resetting this secret",
    )


_NOT_FOUND = "; it was probably deleted meanwhile"
RULES: dict[int, Rule] = {
    -1: _retry("{endpoint}: WeCom is busy (errcode -1)"),
    6000: _retry("{endpoint}: data version conflict (errcode 6000)"),
    TOO_CONCURRENT: _retry("{endpoint}: too many concurrent calls (errcode 45033); lower the concurrency"),
    40001: _fail(
        WeComConfigError,
        "the secret is wrong (errcode 40001); "
        "set the password field to the contact-sync assistant's or the app's secret",
    ),
    40013: _fail(
        WeComConfigError,
        "the corp id is wrong (errcode 40013); set the login field to the corp id "
        "(admin console: My Company > Company Information, starts with 'ww')",
    ),
    60020: _fail(
        WeComConfigError,
        "WeCom refuses calls from IP {ip} (errcode 60020); add {ip} to the trusted-IP list of "
        "the app or the contact-sync assistant in the admin console",
    ),
    48002: _fail(
        WeComPermissionError,
        "this secret may not call {endpoint} (errcode 48002); grant the app read access to the "
        "contacts API in the admin console, or use the contact-sync assistant's secret",
    ),
    48009: _fail(
        WeComPermissionError,
        "the contact-sync assistant may not call {endpoint} from this IP (errcode 48009): since "
        "2022-08-15, IPs newly added to it can only use the id-list endpoints (department/simplelist, "
        "user/list_id); extract with those, or use an app secret with contacts access",
    ),
    60111: _fail(WeComNotFoundError, "{endpoint}: userid not found (errcode 60111)" + _NOT_FOUND),
    60003: _fail(WeComNotFoundError, "{endpoint}: department not found (errcode 60003)" + _NOT_FOUND),
    60123: _fail(WeComNotFoundError, "{endpoint}: invalid department (errcode 60123)" + _NOT_FOUND),
    40068: _fail(WeComNotFoundError, "{endpoint}: invalid tagid (errcode 40068)" + _NOT_FOUND),
    60011: _fail(
        WeComNoPrivilegeError,
        "{endpoint}: no privilege for this member or department (errcode 60011): it lies outside the "
        "app's visible scope, so the snapshot is incomplete; widen the visible scope in the admin console",
    ),
    RATE_LIMITED: Rule(
        Action.WAIT,
        WeComRateLimitError,
        "{endpoint} is over WeCom's frequency limit (errcode 45009) even after {waits} waits of "
        "{rate_limit_wait} s; lower the limits or concurrency, or run the sync later",
    ),
    INVALID_CURSOR: _fail(WeComError, "{endpoint}: the pagination cursor was rejected (errcode 50100) again and again"),
    40014: _renew("invalid access_token"),
    42001: _renew("access_token expired"),
    41001: _renew("access_token missing"),
}
UNKNOWN_ERRCODE = _fail(WeComError, "{endpoint} failed with errcode {errcode}: {errmsg}")
TRANSPORT = _retry("{endpoint}: {detail}")
MALFORMED = Rule(
    Action.RETRY,
    WeComMalformedResponseError,
    "{endpoint} answered {detail}, {attempts} times in a row; check that base_url points at WeCom's API "
    "and that no proxy rewrites or cuts the answers",
)
LINK_GONE = _fail(
    WeComError, "{endpoint}: the export file link answered {detail}; links live 2 hours, so run the extract again"
)


def interpret(response: requests.Response) -> dict[str, Any] | Failure:
    """The body of a successful answer, or the failure it reports (a body that is not WeCom's included)."""
    try:
        # orjson straight from the bytes (WeCom answers UTF-8): 3x faster than response.json(), which
        # also guesses the encoding first; its JSONDecodeError is a ValueError.
        body = orjson.loads(response.content)
    except (ValueError, requests.RequestException):
        body = None
    if not isinstance(body, dict):
        return Failure(MALFORMED, detail=f"something that is not a JSON object (HTTP {response.status_code})")
    errcode = body.get("errcode", 0)
    if not isinstance(errcode, int) or isinstance(errcode, bool):
        return Failure(MALFORMED, detail="an errcode that is not a number")
    if errcode == 0:
        return body
    errmsg = body.get("errmsg")
    return Failure(RULES.get(errcode, UNKNOWN_ERRCODE), errcode, errmsg if isinstance(errmsg, str) else "")


def _caller_ip(errmsg: str) -> str:
    match = _CALLER_IP.search(errmsg)
    return match.group(1) if match else "(WeCom did not say which)"
