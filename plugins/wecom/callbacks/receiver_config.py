"""What one callback endpoint needs, read from the ``wecom`` connection through ``WeComSettings``.

The connection is parsed in one place (``wecom.settings``, with its bounds)
for the hook, the DAGs and the receiver alike; its ``target_conn_id`` is the
one rule for where events go. The receiver's engine bounds every wait on the
database, so an answer never waits past WeCom's window: pool checkout,
connect, and on PostgreSQL a statement and lock timeout set on each session
(SQLite: the busy timeout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import URL, Engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection

from wecom.api.crypto import WeComCrypto
from wecom.errors import CryptoConfigError, ReceiverConfigError, SettingsError, UnknownConnectionError
from wecom.settings import WeComSettings
from wecom.store.engine import AirflowConnectionLike, create_target_engine

DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_TIMESTAMP_WINDOW_S = 300
APPLICATION_NAME = "wecom-callback-receiver"


@dataclass(frozen=True)
class ReceiverLimits:
    """Bounds that keep every answer inside WeCom's 5 s window; the defaults are the CLI's.

    ``write_deadline_s`` caps a request from its arrival to its answer
    (connection lookup and database write); the database timeouts sit inside
    it, so the database usually names the cause before the deadline does.
    """

    write_deadline_s: float = 3.0
    statement_timeout_s: float = 2.5
    lock_timeout_s: float = 1.5
    pool_timeout_s: float = 1.0
    body_timeout_s: float = 5.0
    max_concurrent_requests: int = 256

    def __post_init__(self) -> None:
        if min(self.write_deadline_s, self.statement_timeout_s, self.lock_timeout_s, self.pool_timeout_s) <= 0:
            raise ReceiverConfigError("receiver timeouts must be positive")
        if self.body_timeout_s <= 0 or self.max_concurrent_requests < 1:
            raise ReceiverConfigError("body timeout and concurrent request cap must be positive")


@dataclass(frozen=True)
class ReceiverConfig:
    """What one callback endpoint needs; built per conn_id by a resolver."""

    corp_id: str
    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    engine: Engine
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timestamp_window_s: int = DEFAULT_TIMESTAMP_WINDOW_S  # 0 turns the check off (tests of fixed samples)
    crypto: WeComCrypto = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0 or self.timestamp_window_s < 0:
            raise ReceiverConfigError("max_body_bytes must be positive and timestamp_window_s not negative")
        object.__setattr__(self, "crypto", WeComCrypto(self.token, self.encoding_aes_key, self.corp_id))


Resolver = Callable[[str], ReceiverConfig]
# What a resolver raises for a connection that cannot be served (404 or 500, not 503).
CONFIG_ERRORS = (UnknownConnectionError, ReceiverConfigError, CryptoConfigError)


def _session_timeouts(limits: ReceiverLimits) -> Callable[[DBAPIConnection, object], None]:
    statement_ms, lock_ms = round(limits.statement_timeout_s * 1000), round(limits.lock_timeout_s * 1000)

    def on_connect(dbapi_connection: DBAPIConnection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET statement_timeout = {statement_ms}")
        cursor.execute(f"SET lock_timeout = {lock_ms}")
        cursor.close()
        dbapi_connection.commit()

    return on_connect


def receiver_engine(url: str | URL, limits: ReceiverLimits) -> Engine:
    """An engine whose every wait is bounded by ``limits`` (see the module docstring)."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return create_target_engine(url, timeout_s=limits.lock_timeout_s, pool_timeout=limits.pool_timeout_s)
    connect_args = {} if "application_name" in url.query else {"application_name": APPLICATION_NAME}
    engine = create_target_engine(
        url, timeout_s=limits.lock_timeout_s, pool_timeout=limits.pool_timeout_s, connect_args=connect_args
    )
    event.listen(engine, "connect", _session_timeouts(limits))
    return engine


def config_from_connection(
    conn_id: str, conn: AirflowConnectionLike, engine_for: Callable[[str], Engine]
) -> ReceiverConfig:
    """The endpoint of a ``wecom`` connection, parsed by the one parser; ``engine_for(target_conn_id)``.

    Raises ``UnknownConnectionError`` (404) when the connection is not set up
    for callbacks and ``ReceiverConfigError`` when a field is out of bounds.
    """
    not_set_up = UnknownConnectionError(f"connection {conn_id!r} is not a wecom connection set up for callbacks")
    if conn.conn_type != "wecom":
        raise not_set_up
    try:
        settings = WeComSettings.from_fields(
            conn_id, host=conn.host, login=conn.login, password=conn.password, extra=conn.extra_dejson
        )
    except SettingsError as exc:
        raise ReceiverConfigError(str(exc)) from None
    if not settings.callback_token or not settings.encoding_aes_key:
        raise not_set_up
    return ReceiverConfig(
        corp_id=settings.corp_id,
        token=settings.callback_token,
        encoding_aes_key=settings.encoding_aes_key,
        engine=engine_for(settings.target_conn_id),
        max_body_bytes=settings.options.get("callback_max_body_bytes", DEFAULT_MAX_BODY_BYTES),
        timestamp_window_s=settings.options.get("callback_timestamp_window_s", DEFAULT_TIMESTAMP_WINDOW_S),
    )
