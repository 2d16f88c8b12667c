"""HTTP receiver for WeCom contact-change callbacks.

WeCom retries anything but a 200 within 5 s, so the receiver does the least
work that makes an acknowledgement safe: check the signature, decrypt, parse
and commit the event to ``wecom_callback_events`` before answering
``success``; applying it to the directory is the apply DAG's job. Routes, under
``path_prefix`` (``/wecom`` standalone; the Airflow plugin mounts the app at
``AIRFLOW_URL_PREFIX`` instead):

- ``GET /callback/{conn_id}``: URL verification, answers the decrypted echostr.
- ``POST /callback/{conn_id}``: one event, answered ``success`` once committed.

Rejections, each with one log line that never holds a secret or member data:
404 unknown conn_id; 403 missing or wrong signature, timestamp outside the
window (a replay guard: a redelivery within the window is deduplicated), a
ToUserName or receive id of another corp; 400 body not XML, XML with a DTD or
entities, no Encrypt, ciphertext not base64 or badly padded, a malformed field
in the decrypted event; 408 body too slow; 413 body over the limit; 500
connection misconfigured; 503 database unavailable, locked or slower than the
write deadline, connection store unavailable, or too many requests at once, so
WeCom retries. Serve it standalone with ``python -m wecom.receiver``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from wecom.callbacks.events_table import NewEvent, describe_failure
from wecom.callbacks.intake import Intake
from wecom.callbacks.parse import parse_event, parse_xml
from wecom.callbacks.receiver_config import CONFIG_ERRORS, ReceiverConfig, ReceiverLimits, Resolver
from wecom.errors import (
    CallbackCryptoError,
    CallbackRejected,
    DecryptError,
    EventParseError,
    ReceiveIdError,
    SignatureError,
    UnknownConnectionError,
    UnsafeXmlError,
)

log = logging.getLogger(__name__)

AIRFLOW_URL_PREFIX = "/wecom"
DEFAULT_CONFIG_TTL_S = 60.0
Clock = Callable[[], float]


async def _on_rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CallbackRejected)
    log.warning(
        "wecom callback %s conn_id=%r rejected with %d: %s",
        request.method,
        request.path_params.get("conn_id"),
        exc.status,
        exc.reason,
    )
    return PlainTextResponse(HTTPStatus(exc.status).phrase, status_code=exc.status)


class _ConfigCache:
    """Resolved configs (and definite failures) per conn_id for ``ttl_s`` seconds.

    A hit is served in the event loop; only a miss pays for a worker thread,
    because the lookup may block on the metastore or a secrets backend. Caching
    failures too keeps a scanner from turning requests into lookups; the table
    is bounded so random conn_ids cannot grow it without limit.
    """

    MAX_ENTRIES = 1024

    def __init__(self, resolve: Resolver, ttl_s: float, clock: Clock) -> None:
        self._resolve = resolve
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, ReceiverConfig | Exception]] = {}

    async def get(self, conn_id: str, timeout_s: float) -> ReceiverConfig:
        now = self._clock()
        entry = self._entries.get(conn_id)
        if entry is None or entry[0] <= now:
            try:
                value: ReceiverConfig | Exception = await asyncio.wait_for(
                    run_in_threadpool(self._resolve, conn_id), max(timeout_s, 0.001)
                )
            except CONFIG_ERRORS as exc:
                value = exc
            except TimeoutError:
                raise CallbackRejected(503, "connection lookup did not finish within the write deadline") from None
            except Exception as exc:
                raise CallbackRejected(503, f"cannot load the connection ({type(exc).__name__})") from None
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) < self.MAX_ENTRIES:
                self._entries[conn_id] = (now + self._ttl_s, value)
            entry = (now, value)
        value = entry[1]
        if isinstance(value, UnknownConnectionError):
            raise CallbackRejected(404, str(value))
        if isinstance(value, Exception):
            raise CallbackRejected(500, f"connection misconfigured: {value}")
        return value


def _signed_params(request: Request) -> tuple[str, str, str]:
    query = request.query_params
    params = (query.get("msg_signature"), query.get("timestamp"), query.get("nonce"))
    if not all(params):
        raise CallbackRejected(403, "not a signed request: msg_signature, timestamp or nonce missing")
    return params  # type: ignore[return-value]


def _verify(config: ReceiverConfig, signed: tuple[str, str, str], encrypted: str) -> None:
    """Signature first (so nothing below runs for a forger), then the replay window."""
    signature, timestamp, nonce = signed
    try:
        config.crypto.verify_signature(signature, timestamp, nonce, encrypted)
    except SignatureError as exc:
        raise CallbackRejected(403, f"bad signature: {exc} (is the Token the connection's callback_token?)") from None
    if config.timestamp_window_s:
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise CallbackRejected(403, "timestamp is not a number")
        skew = abs(time.time() - int(timestamp))
        if skew > config.timestamp_window_s:
            raise CallbackRejected(403, f"timestamp is {skew:.0f} s away, window is {config.timestamp_window_s} s")


def _decrypt(config: ReceiverConfig, encrypted: str) -> str:
    try:
        return config.crypto.decrypt(encrypted)
    except ReceiveIdError as exc:
        raise CallbackRejected(403, f"wrong corp: {exc} (is the connection's login this corp's id?)") from None
    except CallbackCryptoError as exc:
        raise CallbackRejected(400 if isinstance(exc, DecryptError) else 403, f"cannot decrypt: {exc}") from None


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body, refused as soon as it is known to exceed ``limit`` or to take over ``timeout_s``."""
    declared = request.headers.get("content-length")
    if declared is not None and not (declared.isascii() and declared.isdigit()):
        raise CallbackRejected(400, "Content-Length is not a number")
    if declared is not None and int(declared) > limit:
        raise CallbackRejected(413, f"Content-Length {declared} exceeds {limit} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise CallbackRejected(413, f"body exceeds {limit} bytes")
    except TimeoutError:
        raise CallbackRejected(408, f"body not received within {timeout_s:g} s") from None
    return bytes(body)


def _parse_envelope(body: bytes) -> tuple[str | None, str]:
    """``(ToUserName, Encrypt)`` of the outer XML."""
    try:
        envelope = parse_xml(body)
    except UnsafeXmlError:
        raise CallbackRejected(400, "body XML declares a DTD or entities") from None
    except EventParseError:
        raise CallbackRejected(400, "body is not XML") from None
    encrypted = envelope.findtext("Encrypt")
    if not encrypted:
        raise CallbackRejected(400, "body has no Encrypt element")
    return envelope.findtext("ToUserName"), encrypted


class _Gate:
    """Caps requests in progress: past ``limit`` a request is answered 503 at once (WeCom retries)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0

    def __enter__(self) -> None:
        if self.busy >= self.limit:
            raise CallbackRejected(503, f"more than {self.limit} requests in progress")
        self.busy += 1

    def __exit__(self, *_exc: object) -> None:
        self.busy -= 1


def create_receiver_app(
    resolve: Resolver,
    *,
    path_prefix: str = AIRFLOW_URL_PREFIX,
    cache_ttl_s: float = DEFAULT_CONFIG_TTL_S,
    limits: ReceiverLimits | None = None,
    clock: Clock = time.monotonic,
    intake: Intake | None = None,
) -> FastAPI:
    """The callback app.

    ``resolve`` maps a conn_id to its config, raising ``UnknownConnectionError``
    (404) or ``ReceiverConfigError``/``CryptoConfigError`` (500); anything else
    it raises answers 503. Results are reused for ``cache_ttl_s`` seconds.
    ``limits`` bounds each request (``write_deadline_s`` measured on ``clock``);
    ``intake`` writes the events (one per app by default).
    """
    limits = limits or ReceiverLimits()
    intake = intake or Intake()

    app = FastAPI(title="WeCom callback receiver", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(CallbackRejected, _on_rejected)
    configs = _ConfigCache(resolve, cache_ttl_s, clock)
    gate = _Gate(limits.max_concurrent_requests)
    route = f"{path_prefix}/callback/{{conn_id}}"

    async def verify_url(request: Request) -> PlainTextResponse:
        conn_id = request.path_params["conn_id"]
        with gate:
            config = await configs.get(conn_id, limits.write_deadline_s)
        # Query values arrive URL-decoded; base64 has no spaces, so a space was an unescaped "+".
        echostr = (request.query_params.get("echostr") or "").replace(" ", "+")
        try:
            signed = _signed_params(request)
            if not echostr:
                raise CallbackRejected(400, "echostr missing")
            _verify(config, signed, echostr)
            answer = _decrypt(config, echostr)
        except CallbackRejected as exc:
            raise CallbackRejected(exc.status, f"URL verification failed: {exc.reason}") from None
        log.info("wecom callback URL verification for conn_id=%r: ok", conn_id)
        return PlainTextResponse(answer)

    async def receive_event(request: Request) -> PlainTextResponse:
        with gate:
            return await _receive(request, clock() + limits.write_deadline_s)

    async def _receive(request: Request, deadline: float) -> PlainTextResponse:
        conn_id = request.path_params["conn_id"]
        config = await configs.get(conn_id, deadline - clock())
        signed = _signed_params(request)
        body = await _read_body(request, config.max_body_bytes, limits.body_timeout_s)
        to_user, encrypted = _parse_envelope(body)
        received_at = datetime.now(UTC)
        _verify(config, signed, encrypted)
        if to_user is not None and to_user != config.corp_id:
            raise CallbackRejected(403, "ToUserName is not this connection's corp id")
        message = _decrypt(config, encrypted)
        try:
            event = parse_event(message)
        except EventParseError as exc:
            raise CallbackRejected(400, f"decrypted event rejected: {exc}") from None
        future = intake.submit(config.engine, NewEvent(config.corp_id, conn_id, event, message, received_at))
        try:
            async with asyncio.timeout(max(deadline - clock(), 0.001)):
                is_new = await asyncio.wrap_future(future)
        except TimeoutError:
            reason = f"database write did not finish within the {limits.write_deadline_s:g} s deadline"
            raise CallbackRejected(503, reason) from None
        except Exception as exc:
            raise CallbackRejected(503, describe_failure(exc)) from None
        log.debug(
            "wecom callback conn_id=%r stored %s %s (%s)",
            conn_id,
            event.change_type,
            event.status,
            "new" if is_new else "redelivery",
        )
        return PlainTextResponse("success")

    # Plain Starlette routes: FastAPI's parameter solving would be most of the per-event CPU.
    app.add_route(route, verify_url, methods=["GET"])
    app.add_route(route, receive_event, methods=["POST"])
    return app
