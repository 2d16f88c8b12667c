"""The standalone receiver: ``python -m wecom.receiver --conn-id wecom_default``.

uvicorn serving the callback app, hardened for the open internet: a client
must send a request's headers within ``--header-timeout`` and its body within
``--body-timeout``, the request line and headers are capped by ``--max-header-bytes`` and
bodies by the connection's ``callback_max_body_bytes``; past ``--max-requests`` requests in progress (or
``--max-connections`` connections) the answer is 503 at once, which WeCom
retries. SIGTERM stops accepting, finishes the requests in flight (their
database writes included) for up to ``--shutdown-timeout`` seconds, then exits.
Every database wait is bounded so that each callback is answered within about
``--write-deadline`` seconds whatever the database does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Sequence

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from wecom.callbacks.events_table import check_events_table, describe_failure
from wecom.callbacks.receiver import AIRFLOW_URL_PREFIX, create_receiver_app
from wecom.callbacks.receiver_config import CONFIG_ERRORS, ReceiverConfig, ReceiverLimits, Resolver
from wecom.errors import EventsTableError, ReceiverConfigError, UnknownConnectionError

log = logging.getLogger(__name__)

DEFAULT_HEADER_TIMEOUT_S = 5.0
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_SHUTDOWN_TIMEOUT_S = 10


class _BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline and a size cap on each request's head, and a deadline
    on a body that is still arriving after its answer went out.

    uvicorn bounds only the idle time between requests: a client that sends half a request line would
    hold its connection forever. The head (request line and headers, up to the blank line that ends
    them) must arrive within ``header_timeout_s`` and ``max_header_bytes``; the clock starts when the
    connection opens and again when the next request begins. Body bytes never count against the head:
    the app judges a body (its size against the connection's ``callback_max_body_bytes``, its signature,
    its content), even when the client sent it in the same packets as the headers.

    When the app answers before the body is in (413 on the Content-Length, a bad signature checked
    later, 503 at once), uvicorn reads and drops the rest, so a client that writes its whole body
    before reading gets the answer rather than a reset; the rest must arrive within ``body_timeout_s``,
    then the connection closes, as it does once the rest is in.
    """

    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S
    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    body_timeout_s = ReceiverLimits().body_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._drain_deadline: asyncio.TimerHandle | None = None
        self._body_in = True
        self._drained = False
        super().connection_made(transport)
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._header_bytes = 0
        self._head_started = False
        self._head_tail = b""
        self._header_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout_s, self._close_connection
        )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _disarm_drain_deadline(self) -> None:
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
            self._drain_deadline = None
        self._drained = False

    def _close_connection(self) -> None:
        self._disarm_header_deadline()
        self._disarm_drain_deadline()
        if not self.transport.is_closing():
            self.transport.close()

    def _head_bytes(self, data: bytes) -> int:
        """How many bytes of ``data`` belong to the head: all of them until the blank line that ends it.

        Empty lines before the request line are allowed (RFC 9112, 2.2) and count, but do not end it.
        """
        seen = self._head_tail + data
        start = 0
        if not self._head_started:
            start = len(seen) - len(seen.lstrip(b"\r\n"))
            self._head_started = start < len(seen)
        self._head_tail = seen[-3:]
        end = seen.find(b"\r\n\r\n", start) if self._head_started else -1
        return len(data) if end < 0 else end + 4 - (len(seen) - len(data))

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is not None:
            self._header_bytes += self._head_bytes(data)
            if self._header_bytes > self.max_header_bytes:
                self._disarm_header_deadline()
                self.send_400_response("Request headers too large.")
                return
        super().data_received(data)
        if self._drained:  # after the parser, which may still hold a pipelined request to drop
            self._close_connection()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:
            self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        self._body_in = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_in = True
        self._drained = self._drain_deadline is not None  # the rest of an answered body is in
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._body_in and not self.transport.is_closing():
            self._drain_deadline = self.loop.call_later(self.body_timeout_s, self._close_connection)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        self._disarm_drain_deadline()
        super().connection_lost(exc)


def bounded_protocol(header_timeout_s: float, max_header_bytes: int, body_timeout_s: float) -> type[HttpToolsProtocol]:
    attributes = {
        "header_timeout_s": header_timeout_s,
        "max_header_bytes": max_header_bytes,
        "body_timeout_s": body_timeout_s,
    }
    return type("BoundedHttpProtocol", (_BoundedHttpProtocol,), attributes)


def _serving_only(resolve: Resolver, conn_ids: frozenset[str]) -> Resolver:
    def restricted(conn_id: str) -> ReceiverConfig:
        if conn_id not in conn_ids:
            raise UnknownConnectionError(f"connection {conn_id!r} is not served by this receiver")
        return resolve(conn_id)

    return restricted


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each setting's default, unless there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wecom.receiver",
        description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", ""),
        formatter_class=_HelpWithDefaults,
    )
    add = parser.add_argument
    limits = ReceiverLimits()
    add("--conn-id", action="append", required=True, help="wecom connection to serve (repeat for several)")
    add("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all)")
    add("--port", type=int, default=8090, help="port to listen on")
    add("--public-url", help="URL WeCom reaches this server at, for the printed callback URL (default: host:port)")
    add("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT_S, help="seconds to receive a request's headers")
    add("--max-header-bytes", type=int, default=DEFAULT_MAX_HEADER_BYTES, help="largest request line + headers")
    add("--body-timeout", type=float, default=limits.body_timeout_s, help="seconds to receive a request's body")
    add("--max-requests", type=int, default=limits.max_concurrent_requests, help="requests in progress, then 503")
    add("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, help="open connections, then uvicorn's 503")
    add("--keep-alive-timeout", type=int, default=5, help="seconds an idle keep-alive connection stays open")
    add(
        "--write-deadline", type=float, default=limits.write_deadline_s, help="seconds from arrival to answer, then 503"
    )
    add("--statement-timeout", type=float, default=limits.statement_timeout_s, help="PostgreSQL statement_timeout, s")
    add(
        "--lock-timeout",
        type=float,
        default=limits.lock_timeout_s,
        help="PostgreSQL lock_timeout, SQLite busy timeout, s",
    )
    add(
        "--pool-timeout",
        type=float,
        default=limits.pool_timeout_s,
        help="seconds to wait for a free database connection",
    )
    add("--shutdown-timeout", type=int, default=DEFAULT_SHUTDOWN_TIMEOUT_S, help="seconds to finish in-flight work")
    add("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level")
    add("--access-log", action="store_true", help="log every request (off: WeCom is chatty)")
    return parser


def _limits(args: argparse.Namespace) -> ReceiverLimits:
    return ReceiverLimits(
        write_deadline_s=args.write_deadline,
        statement_timeout_s=args.statement_timeout,
        lock_timeout_s=args.lock_timeout,
        pool_timeout_s=args.pool_timeout,
        body_timeout_s=args.body_timeout,
        max_concurrent_requests=args.max_requests,
    )


def _check_endpoint(resolve: Resolver, conn_id: str) -> str | None:
    """Why ``conn_id`` cannot be served (a one-line reason), or None; a database that is down only warns."""
    try:
        check_events_table(resolve(conn_id).engine)
    except (*CONFIG_ERRORS, EventsTableError) as exc:
        return f"{conn_id}: {exc}"
    except SQLAlchemyError as exc:
        log.warning(
            "%s: target database unreachable at startup (%s); answering 503 until it is back",
            conn_id,
            describe_failure(exc),
        )
    return None


def main(argv: Sequence[str] | None, resolver: Callable[[ReceiverLimits], Resolver]) -> None:
    """Parse the command line and serve until SIGTERM; ``resolver(limits)`` reads the connections
    (``wecom.receiver`` passes Airflow's)."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        limits = _limits(args)
    except ReceiverConfigError as exc:
        parser.error(str(exc))
    resolve = resolver(limits)
    public_url = (args.public_url or f"http://{args.host}:{args.port}").rstrip("/")
    for conn_id in args.conn_id:
        problem = _check_endpoint(resolve, conn_id)
        if problem:
            parser.exit(2, f"wecom receiver: {problem}\n")
        log.info(
            "serving %s: paste %s%s/callback/%s into the admin console",
            conn_id,
            public_url,
            AIRFLOW_URL_PREFIX,
            conn_id,
        )
    app = create_receiver_app(_serving_only(resolve, frozenset(args.conn_id)), limits=limits)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http=bounded_protocol(args.header_timeout, args.max_header_bytes, args.body_timeout),
        limit_concurrency=args.max_connections,
        timeout_keep_alive=args.keep_alive_timeout,
        timeout_graceful_shutdown=args.shutdown_timeout,
        log_level=args.log_level,
        access_log=args.access_log,
    )
