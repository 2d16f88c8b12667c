"""WeCom error bodies: HTTP 200, an ``errcode`` and an ``errmsg`` in WeCom's own format.

The errmsg carries a hint id, the caller's IP and a help link exactly like the
real service, so clients are exercised against text they must not parse.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

OK = 0
SYSTEM_BUSY = -1
INVALID_SECRET = 40001
INVALID_CORPID = 40013
INVALID_TOKEN = 40014
INVALID_PARAMETER = 40058
INVALID_TAG = 40068
TOKEN_MISSING = 41001
CORPID_MISSING = 41002
SECRET_MISSING = 41004
TOKEN_EXPIRED = 42001
REQUIRE_GET = 43001
REQUIRE_POST = 43002
FREQUENCY_LIMIT = 45009
CONCURRENCY_LIMIT = 45033
DATA_FORMAT = 47001
API_FORBIDDEN = 48002
CONTACT_SYNC_FORBIDDEN = 48009
INVALID_CURSOR = 50100
DEPARTMENT_NOT_FOUND = 60003
NO_PRIVILEGE = 60011
USER_NOT_FOUND = 60111
INVALID_DEPARTMENT = 60123

MESSAGES: dict[int, str] = {
    SYSTEM_BUSY: "system busy",
    6000: "data version conflict",
    INVALID_SECRET: "invalid credential",
    INVALID_CORPID: "invalid corpid",
    INVALID_TOKEN: "invalid access_token",
    INVALID_PARAMETER: "invalid parameter",
    INVALID_TAG: "invalid tagid",
    TOKEN_MISSING: "access_token missing",
    CORPID_MISSING: "corpid missing",
    SECRET_MISSING: "corpsecret missing",
    TOKEN_EXPIRED: "access_token expired",
    REQUIRE_GET: "require GET method",
    REQUIRE_POST: "require POST method",
    FREQUENCY_LIMIT: "api freq out of limit",
    CONCURRENCY_LIMIT: "api concurrent out of limit",
    DATA_FORMAT: "data format error",
    API_FORBIDDEN: "api forbidden",
    CONTACT_SYNC_FORBIDDEN: "api forbidden for contact sync assistant",
    INVALID_CURSOR: "invalid cursor",
    DEPARTMENT_NOT_FOUND: "department not found",
    NO_PRIVILEGE: "no privilege to access/modify contact/party/agent",
    60020: "not allow to access from your ip",
    USER_NOT_FOUND: "userid not found",
    INVALID_DEPARTMENT: "invalid party id",
}


class ApiError(Exception):
    """Raised by an endpoint handler to answer with a WeCom error body."""

    def __init__(self, errcode: int, detail: str = "") -> None:
        super().__init__(f"{errcode} {detail}".strip())
        self.errcode = errcode
        self.detail = detail


def errmsg(errcode: int, client_ip: str, detail: str = "") -> str:
    """``"<text>, hint: [<id>], from ip: <ip>, more info at ...?e=<code>"``, as WeCom words it."""
    text = MESSAGES.get(errcode, "unknown error")
    if detail:
        text = f"{text}: {detail}"
    hint = f"{int(time.time())}{secrets.token_hex(4)}-{secrets.token_hex(8)}"
    return (
        f"{text}, hint: [{hint}], from ip: {client_ip}, "
        f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    )


def error_body(errcode: int, client_ip: str, detail: str = "", empty: dict[str, Any] | None = None) -> dict[str, Any]:
    """An error answer; ``empty`` adds the endpoint's empty result arrays, as some WeCom errors carry."""
    return {"errcode": errcode, "errmsg": errmsg(errcode, client_ip, detail), **(empty or {})}
