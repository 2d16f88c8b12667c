"""The group-robot webhook (``POST /cgi-bin/webhook/send?key=...``) and an inbox tests can read.

WeCom's group robots take a message without an access token: the ``key`` in
the query string is the credential. The simulator keeps every accepted
message so an alert can be checked end to end, over HTTP, from another process:

- ``GET /_sim/robot/messages``: ``{"messages": [{key, msgtype, content, received_at}]}``;
- ``DELETE /_sim/robot/messages``: empty the inbox;
- ``PUT /_sim/robot/keys`` ``{"keys": [...]}``: only these keys are valid
  (until then every non-empty key is), others answer 93000 as WeCom does.

Checks, as the robot documents them: a missing or unknown key answers 93000,
a body that is not a JSON object 40058, an unknown ``msgtype`` 40008, a text
or markdown ``content`` that is empty or over 4096 bytes (UTF-8) 40058, and
more than 20 messages a minute to one robot 45009.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from wecom_simulator import errcodes as ec
from wecom_simulator.errcodes import ApiError, error_body

INVALID_WEBHOOK = 93000
INVALID_MSGTYPE = 40008
MAX_CONTENT_BYTES = 4096
MESSAGES_PER_MINUTE = 20
CONTENT_TYPES = ("text", "markdown", "markdown_v2")

ec.MESSAGES.setdefault(INVALID_WEBHOOK, "invalid webhook url")
ec.MESSAGES.setdefault(INVALID_MSGTYPE, "invalid message type")


class RobotInbox:
    """Accepted robot messages, valid keys and each key's sending times (for the per-minute limit)."""

    def __init__(self, window_s: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._window_s = window_s
        self._sent: dict[str, deque[float]] = {}
        self.messages: list[dict[str, Any]] = []
        self.valid_keys: frozenset[str] | None = None

    def admit(self, key: str) -> bool:
        """Count one message for ``key``; False once it sent ``MESSAGES_PER_MINUTE`` in the window."""
        now = time.monotonic()
        with self._lock:
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0] <= now - self._window_s:
                sent.popleft()
            if len(sent) >= MESSAGES_PER_MINUTE:
                return False
            sent.append(now)
            return True

    def record(self, key: str, msgtype: str, content: str) -> None:
        with self._lock:
            self.messages.append(
                {"key": key, "msgtype": msgtype, "content": content, "received_at": datetime.now(UTC).isoformat()}
            )

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self._sent.clear()


router = APIRouter()


def _inbox(request: Request) -> RobotInbox:
    return request.app.state.robot


def _message(inbox: RobotInbox, key: str, body: Any) -> tuple[str, str]:
    """``(msgtype, content)`` of an acceptable message; raises ``ApiError`` with WeCom's errcode otherwise."""
    if not key or (inbox.valid_keys is not None and key not in inbox.valid_keys):
        raise ApiError(INVALID_WEBHOOK)
    if not isinstance(body, dict):
        raise ApiError(ec.INVALID_PARAMETER, "body must be a JSON object")
    msgtype = body.get("msgtype")
    if msgtype not in CONTENT_TYPES:
        raise ApiError(INVALID_MSGTYPE)
    payload = body.get(msgtype)
    content = payload.get("content") if isinstance(payload, dict) else None
    if not isinstance(content, str) or not content:
        raise ApiError(ec.INVALID_PARAMETER, f"{msgtype}.content missing")
    if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
        raise ApiError(ec.INVALID_PARAMETER, f"{msgtype}.content exceed max length {MAX_CONTENT_BYTES}")
    if not inbox.admit(key):
        raise ApiError(ec.FREQUENCY_LIMIT)
    return msgtype, content


@router.post("/cgi-bin/webhook/send")
async def send(request: Request) -> JSONResponse:
    inbox = _inbox(request)
    key = request.query_params.get("key") or ""
    try:
        body = await request.json()
    except ValueError:
        body = None
    try:
        msgtype, content = _message(inbox, key, body)
    except ApiError as error:
        client_ip = request.client.host if request.client else "127.0.0.1"
        return JSONResponse(error_body(error.errcode, client_ip, error.detail))
    inbox.record(key, msgtype, content)
    return JSONResponse({"errcode": ec.OK, "errmsg": "ok"})


@router.get("/_sim/robot/messages")
async def list_messages(request: Request) -> dict[str, Any]:
    return {"messages": _inbox(request).snapshot()}


@router.delete("/_sim/robot/messages")
async def clear_messages(request: Request) -> dict[str, Any]:
    _inbox(request).clear()
    return {"messages": []}


@router.put("/_sim/robot/keys")
async def set_keys(request: Request) -> JSONResponse:
    body = await request.json()
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        return JSONResponse({"detail": 'expected {"keys": ["<key>", ...]}'}, status_code=400)
    _inbox(request).valid_keys = frozenset(keys)
    return JSONResponse({"keys": sorted(keys)})


def install(app: FastAPI) -> None:
    """Add the robot routes; call before the ``/cgi-bin/{name}`` catch-all so they match first."""
    app.state.robot = RobotInbox()
    app.include_router(router)
