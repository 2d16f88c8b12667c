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
entities, no Encrypt, ciphertext not base64 or badly padded, malformed event;
413 body over the limit; 500 connection misconfigured; 503 database or
connection store unavailable, so WeCom retries.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool

from wecom.callback_events import (
    EventParseError,
    ParsedEvent,
    UnsafeXmlError,
    ensure_callback_events_table,
    parse_event,
    parse_xml,
    store_event,
)
from wecom.crypto import (
    CallbackCryptoError,
    CryptoConfigError,
    DecryptError,
    WeComCrypto,
)
from wecom.hooks.target_db import engine_from_airflow_connection

log = logging.getLogger(__name__)

AIRFLOW_URL_PREFIX = "/wecom"
DEFAULT_TARGET_CONN_ID = "wecom_target_db"
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_TIMESTAMP_WINDOW_S = 300
DEFAULT_CONFIG_TTL_S = 60.0
# Bounds the wait for a database connection or SQLite's write lock, well inside WeCom's 5 s.
TARGET_DB_TIMEOUT_S = 3.0


class UnknownConnectionError(LookupError):
    """No callback endpoint for this conn_id (no such connection, or not set up for callbacks)."""


class ReceiverConfigError(ValueError):
    """The connection exists but its callback settings are unusable."""


@dataclass(frozen=True)
class ReceiverConfig:
    """What one callback endpoint needs; built per conn_id by a resolver."""

    corp_id: str
    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    engine: Engine
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timestamp_window_s: int = DEFAULT_TIMESTAMP_WINDOW_S  # 0 turns the check off
    crypto: WeComCrypto = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0 or self.timestamp_window_s < 0:
            raise ReceiverConfigError("max_body_bytes must be positive and timestamp_window_s not negative")
        object.__setattr__(self, "crypto", WeComCrypto(self.token, self.encoding_aes_key, self.corp_id))


Resolver = Callable[[str], ReceiverConfig]


class _Rejected(Exception):
    """Ends a request with ``status``; ``reason`` goes to the log only, the body is the bare phrase."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def _on_rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Rejected)
    log.warning(
        "wecom callback %s conn_id=%r rejected with %d: %s",
        request.method,
        request.path_params.get("conn_id"),
        exc.status,
        exc.reason,
    )
    return PlainTextResponse(HTTPStatus(exc.status).phrase, status_code=exc.status)


@dataclass
class _Pending:
    """An event waiting for the writer; its future resolves to True if new, False if a redelivery."""

    corp_id: str
    conn_id: str
    event: ParsedEvent
    message: str
    received_at: datetime
    future: Future[bool] = field(default_factory=Future)


# Failures that say the database cannot be reached or is locked: the whole batch is answered 503.
_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)


def _write_batch(engine: Engine, batch: list[_Pending], *, with_schema: bool) -> bool:
    """Commit ``batch`` in one transaction and resolve its futures; True if it committed.

    Any other failure is retried event by event, so one event the database
    refuses cannot take the events batched with it down too.
    """
    try:
        with engine.begin() as connection:
            if with_schema:
                ensure_callback_events_table(connection)
            results = [
                store_event(connection, p.corp_id, p.event, p.message, p.received_at, conn_id=p.conn_id) for p in batch
            ]
    except Exception as exc:
        if len(batch) == 1 or isinstance(exc, _UNAVAILABLE):
            for pending in batch:
                pending.future.set_exception(exc)
        else:
            for pending in batch:
                _write_batch(engine, [pending], with_schema=False)
        return False
    for pending, is_new in zip(batch, results, strict=True):
        pending.future.set_result(is_new)
    return True


class _BatchWriter:
    """One writer thread per engine, committing whatever events wait in one transaction.

    A commit that survives power loss costs an fsync (about 0.4 ms with SQLite
    here), which caps one-commit-per-event near 1,000 events/s; sharing it
    keeps every acknowledgement durable under load. SQLite allows one writer
    anyway, and PostgreSQL gains the same group commit. A thread ends after
    ``idle_s`` without events, releasing its engine (configs are rebuilt
    every resolver TTL); the next event starts a new one.
    """

    def __init__(self, *, max_batch: int = 256, idle_s: float = 5.0) -> None:
        self._max_batch = max_batch
        self._idle_s = idle_s
        self._lock = threading.Lock()
        self._queues: dict[Engine, queue.SimpleQueue[_Pending]] = {}

    def submit(self, engine: Engine, pending: _Pending) -> Future[bool]:
        with self._lock:
            waiting = self._queues.get(engine)
            if waiting is None:
                waiting = self._queues[engine] = queue.SimpleQueue()
                threading.Thread(
                    target=self._run, args=(engine, waiting), name="wecom-callback-writer", daemon=True
                ).start()
            waiting.put(pending)
        return pending.future

    def _run(self, engine: Engine, waiting: queue.SimpleQueue[_Pending]) -> None:
        schema_ready = False
        while True:
            try:
                batch = [waiting.get(timeout=self._idle_s)]
            except queue.Empty:
                with self._lock:
                    if waiting.empty():
                        del self._queues[engine]
                        return
                continue
            while len(batch) < self._max_batch and not waiting.empty():
                batch.append(waiting.get_nowait())
            schema_ready = _write_batch(engine, batch, with_schema=not schema_ready) or schema_ready


_CONFIG_ERRORS = (UnknownConnectionError, ReceiverConfigError, CryptoConfigError)


class _ConfigCache:
    """Resolved configs (and definite failures) per conn_id for ``ttl_s`` seconds.

    A hit is served in the event loop; only a miss pays for a worker thread,
    because the lookup may block on the metastore or a secrets backend. Caching
    failures too keeps a scanner from turning requests into lookups; the table
    is bounded so random conn_ids cannot grow it without limit.
    """

    MAX_ENTRIES = 1024

    def __init__(self, resolve: Resolver, ttl_s: float) -> None:
        self._resolve = resolve
        self._ttl_s = ttl_s
        self._entries: dict[str, tuple[float, ReceiverConfig | Exception]] = {}

    async def get(self, conn_id: str) -> ReceiverConfig:
        now = time.monotonic()
        entry = self._entries.get(conn_id)
        if entry is None or entry[0] <= now:
            try:
                value: ReceiverConfig | Exception = await run_in_threadpool(self._resolve, conn_id)
            except _CONFIG_ERRORS as exc:
                value = exc
            except Exception as exc:
                raise _Rejected(503, f"cannot load the connection ({type(exc).__name__})") from None
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) < self.MAX_ENTRIES:
                self._entries[conn_id] = (now + self._ttl_s, value)
            entry = (now, value)
        value = entry[1]
        if isinstance(value, UnknownConnectionError):
            raise _Rejected(404, str(value))
        if isinstance(value, Exception):
            raise _Rejected(500, f"connection misconfigured: {value}")
        return value


def _signed_params(request: Request) -> tuple[str, str, str]:
    query = request.query_params
    params = (query.get("msg_signature"), query.get("timestamp"), query.get("nonce"))
    if not all(params):
        raise _Rejected(403, "msg_signature, timestamp or nonce missing")
    return params  # type: ignore[return-value]


def _verify(config: ReceiverConfig, signed: tuple[str, str, str], encrypted: str) -> None:
    """Signature first (so nothing below runs for a forger), then the replay window."""
    signature, timestamp, nonce = signed
    try:
        config.crypto.verify_signature(signature, timestamp, nonce, encrypted)
    except CallbackCryptoError as exc:
        raise _Rejected(403, str(exc)) from None
    if config.timestamp_window_s:
        if not timestamp.isdigit():
            raise _Rejected(403, "timestamp is not a number")
        skew = abs(time.time() - int(timestamp))
        if skew > config.timestamp_window_s:
            raise _Rejected(403, f"timestamp is {skew:.0f} s away, window is {config.timestamp_window_s} s")


def _decrypt(config: ReceiverConfig, encrypted: str) -> str:
    try:
        return config.crypto.decrypt(encrypted)
    except CallbackCryptoError as exc:
        raise _Rejected(400 if isinstance(exc, DecryptError) else 403, str(exc)) from None


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to exceed ``limit`` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise _Rejected(400, "Content-Length is not a number")
    if declared is not None and int(declared) > limit:
        raise _Rejected(413, f"Content-Length {declared} exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _Rejected(413, f"body exceeds {limit} bytes")
    return bytes(body)


def _parse_envelope(body: bytes) -> tuple[str | None, str]:
    """``(ToUserName, Encrypt)`` of the outer XML."""
    try:
        envelope = parse_xml(body)
    except UnsafeXmlError:
        raise _Rejected(400, "body XML declares a DTD or entities") from None
    except EventParseError:
        raise _Rejected(400, "body is not XML") from None
    encrypted = envelope.findtext("Encrypt")
    if not encrypted:
        raise _Rejected(400, "body has no Encrypt element")
    return envelope.findtext("ToUserName"), encrypted


def create_receiver_app(
    resolve: Resolver, *, path_prefix: str = AIRFLOW_URL_PREFIX, cache_ttl_s: float = DEFAULT_CONFIG_TTL_S
) -> FastAPI:
    """The callback app.

    ``resolve`` maps a conn_id to its config, raising ``UnknownConnectionError``
    (404) or ``ReceiverConfigError``/``CryptoConfigError`` (500); anything else
    it raises answers 503. Results are reused for ``cache_ttl_s`` seconds.
    """
    app = FastAPI(title="WeCom callback receiver", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(_Rejected, _on_rejected)
    configs = _ConfigCache(resolve, cache_ttl_s)
    writer = _BatchWriter()
    route = f"{path_prefix}/callback/{{conn_id}}"

    async def verify_url(request: Request) -> PlainTextResponse:
        conn_id = request.path_params["conn_id"]
        config = await configs.get(conn_id)
        signed = _signed_params(request)
        # Query values arrive URL-decoded; base64 has no spaces, so a space was an unescaped "+".
        echostr = (request.query_params.get("echostr") or "").replace(" ", "+")
        if not echostr:
            raise _Rejected(400, "echostr missing")
        _verify(config, signed, echostr)
        return PlainTextResponse(_decrypt(config, echostr))

    async def receive_event(request: Request) -> PlainTextResponse:
        conn_id = request.path_params["conn_id"]
        config = await configs.get(conn_id)
        signed = _signed_params(request)
        to_user, encrypted = _parse_envelope(await _read_body(request, config.max_body_bytes))
        received_at = datetime.now(UTC)
        _verify(config, signed, encrypted)
        if to_user is not None and to_user != config.corp_id:
            raise _Rejected(403, "ToUserName is not this connection's corp id")
        message = _decrypt(config, encrypted)
        try:
            event = parse_event(message)
        except EventParseError as exc:
            raise _Rejected(400, f"decrypted event rejected: {exc}") from None
        pending = _Pending(config.corp_id, conn_id, event, message, received_at)
        try:
            is_new = await asyncio.wrap_future(writer.submit(config.engine, pending))
        except SQLAlchemyError as exc:
            raise _Rejected(503, f"database unavailable ({type(exc).__name__})") from None
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


def _int_extra(extra: dict[str, Any], key: str, default: int) -> int:
    try:
        return int(extra.get(key, default))
    except (TypeError, ValueError):
        raise ReceiverConfigError(f"extra {key!r} must be an integer") from None


def airflow_resolver() -> Resolver:
    """A resolver reading the ``wecom`` connection (and its target database) through Airflow.

    ``airflow.sdk.BaseHook.get_connection`` searches env vars (``AIRFLOW_CONN_*``),
    the configured secrets backends and, in server processes (the API server;
    the standalone CLI marks itself as one), the metastore. The app caches what
    it returns; engines are kept per target URL so a refresh reuses the pool.

    Connection: login = corp id; extra ``callback_token``, ``encoding_aes_key``,
    ``target_conn_id`` (default ``wecom_target_db``) and optionally
    ``callback_max_body_bytes`` and ``callback_timestamp_window_s``.
    """
    # Lazy: the app, its tests and the simulator must not need Airflow.
    from airflow.sdk import BaseHook  # noqa: PLC0415
    from airflow.sdk.exceptions import AirflowNotFoundException  # noqa: PLC0415

    engines: dict[str, Engine] = {}

    def resolve(conn_id: str) -> ReceiverConfig:
        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            raise UnknownConnectionError(f"no connection {conn_id!r}") from None
        extra = conn.extra_dejson
        if not extra.get("callback_token") or not extra.get("encoding_aes_key"):
            raise UnknownConnectionError(f"connection {conn_id!r} has no callback_token/encoding_aes_key")
        if not conn.login:
            raise ReceiverConfigError(f"connection {conn_id!r} has no login (the corp id)")
        target_conn_id = extra.get("target_conn_id") or DEFAULT_TARGET_CONN_ID
        try:
            target = BaseHook.get_connection(target_conn_id)
        except AirflowNotFoundException:
            raise ReceiverConfigError(f"target connection {target_conn_id!r} is not defined") from None
        try:
            engine = engine_from_airflow_connection(target, timeout_s=TARGET_DB_TIMEOUT_S)
        except ValueError as exc:
            raise ReceiverConfigError(str(exc)) from None
        engine = engines.setdefault(engine.url.render_as_string(hide_password=False), engine)
        return ReceiverConfig(
            corp_id=conn.login,
            token=extra["callback_token"],
            encoding_aes_key=extra["encoding_aes_key"],
            engine=engine,
            max_body_bytes=_int_extra(extra, "callback_max_body_bytes", DEFAULT_MAX_BODY_BYTES),
            timestamp_window_s=_int_extra(extra, "callback_timestamp_window_s", DEFAULT_TIMESTAMP_WINDOW_S),
        )

    return resolve


@cache
def airflow_app() -> FastAPI:
    """The app the Airflow plugin mounts via ``fastapi_apps`` at ``AIRFLOW_URL_PREFIX``."""
    return create_receiver_app(airflow_resolver(), path_prefix="")


def _serving_only(resolve: Resolver, conn_ids: frozenset[str]) -> Resolver:
    def restricted(conn_id: str) -> ReceiverConfig:
        if conn_id not in conn_ids:
            raise UnknownConnectionError(f"connection {conn_id!r} is not served by this receiver")
        return resolve(conn_id)

    return restricted


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m wecom.receiver --conn-id wecom_default --host 0.0.0.0 --port 8090``."""
    parser = argparse.ArgumentParser(prog="python -m wecom.receiver", description=__doc__.split("\n")[0])
    parser.add_argument("--conn-id", action="append", required=True, help="wecom connection to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--access-log", action="store_true", help="log every request (off: WeCom is chatty)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Like `airflow connections get`: env vars, secrets backends, then the metastore.
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    resolve = airflow_resolver()
    for conn_id in args.conn_id:
        try:
            resolve(conn_id)
        except _CONFIG_ERRORS as exc:
            parser.exit(2, f"wecom receiver: {exc}\n")
        log.info("serving %s/callback/%s", AIRFLOW_URL_PREFIX, conn_id)
    app = create_receiver_app(_serving_only(resolve, frozenset(args.conn_id)))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log)


if __name__ == "__main__":
    main()
