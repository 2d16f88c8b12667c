"""The target database (where the directory lands) as a SQLAlchemy engine.

One place turns an Airflow connection into an engine, so the loader, the
receiver and the apply DAG agree on drivers, timeouts and SQLite pragmas.
``Connection.get_uri()`` cannot be used as is: SQLite keeps its path in
``host`` (JSON form) or ``schema`` (URI form), and ``postgres://`` is not a
SQLAlchemy scheme. No Airflow import happens here: any object with the
``conn_type``/``host``/``schema``/``login``/``password``/``port``/``extra_dejson``
attributes of an Airflow connection works.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError

# libpq options that may sit in a postgres connection's extra and mean the same to psycopg2.
_LIBPQ_OPTIONS = frozenset(
    {
        "application_name",
        "connect_timeout",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "options",
        "sslcert",
        "sslcrl",
        "sslkey",
        "sslmode",
        "sslrootcert",
        "target_session_attrs",
    }
)


class AirflowConnectionLike(Protocol):
    conn_id: str | None
    conn_type: str | None
    host: str | None
    schema: str | None
    login: str | None
    password: str | None
    port: int | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def target_url(conn: AirflowConnectionLike) -> URL:
    """The SQLAlchemy URL of a ``sqlite`` or ``postgres`` Airflow connection."""
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise ValueError(f"sqlite connection {conn.conn_id!r} has no database file path in host")
        return URL.create("sqlite", database=path)
    if conn_type in {"postgres", "postgresql"}:
        query = {k: str(v) for k, v in conn.extra_dejson.items() if k in _LIBPQ_OPTIONS}
        return URL.create(
            "postgresql+psycopg2",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
            query=query,
        )
    raise ValueError(
        f"connection {conn.conn_id!r} has type {conn.conn_type!r}; the target database must be "
        "a sqlite or postgres connection"
    )


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    """WAL lets readers (the apply DAG, the sensor) run beside the writer; FULL makes a commit
    that a callback acknowledgement relies on survive power loss (about 0.2 ms per commit in WAL)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


# Statements per round trip when one statement runs for many rows on PostgreSQL.
EXECUTEMANY_PAGE_SIZE = 500


def create_target_engine(url: str | URL, *, timeout_s: float = 30.0, **engine_kwargs: Any) -> Engine:
    """An engine whose waits are bounded by ``timeout_s`` and whose errors show no bound values.

    SQLite: the busy timeout, so concurrent writers queue instead of failing at
    once. PostgreSQL: the connect timeout, pre-ping so a restarted server
    does not fail the first statement after it, and many rows' statements sent in pages.
    """
    url = make_url(url)
    # Failed statements would otherwise print member data (names, mobiles) into task and server logs.
    engine_kwargs.setdefault("hide_parameters", True)
    connect_args: dict[str, Any] = dict(engine_kwargs.pop("connect_args", {}))
    if url.get_backend_name() == "sqlite":
        connect_args.setdefault("timeout", timeout_s)
        engine = create_engine(url, connect_args=connect_args, **engine_kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if "connect_timeout" not in url.query:
        connect_args.setdefault("connect_timeout", max(1, round(timeout_s)))
    engine_kwargs.setdefault("pool_pre_ping", True)
    if url.get_driver_name() == "psycopg2":
        # psycopg2's executemany sends one statement per round trip: the callback writers' staged rows
        # and history versions (thousands per apply) went one by one. execute_batch sends them in pages.
        engine_kwargs.setdefault("executemany_mode", "values_plus_batch")
        engine_kwargs.setdefault("executemany_batch_page_size", EXECUTEMANY_PAGE_SIZE)
    return create_engine(url, connect_args=connect_args, **engine_kwargs)


def engine_from_airflow_connection(
    conn: AirflowConnectionLike, *, timeout_s: float = 30.0, **engine_kwargs: Any
) -> Engine:
    """The engine for a target-database Airflow connection (see ``create_target_engine``)."""
    return create_target_engine(target_url(conn), timeout_s=timeout_s, **engine_kwargs)


@dataclass(frozen=True)
class Unreachable:
    """Why the target database could not be reached, in plain words, and whether waiting may help."""

    problem: str
    advice: str
    transient: bool


_REFUSED_ADVICE = "start the database server or fix host and port"
# (lower-cased part of the driver's message, problem, advice, transient); the first match wins. A wrong
# name, login or path stays wrong however often it is retried; a refused or silent server may be restarting.
_UNREACHABLE = (
    ("could not translate host name", "unknown host name", "fix the host", False),
    ("name or service not known", "unknown host name", "fix the host", False),
    ("password authentication failed", "login or password refused", "fix the login and password", False),
    ("no pg_hba.conf entry", "the server does not accept this client", "allow it in pg_hba.conf", False),
    ('role "', "unknown user (login)", "fix the login or create the role", False),
    ("does not exist", "unknown database (schema)", "fix the schema or create the database", False),
    ("unable to open database file", "cannot open the SQLite file", "create its folder or fix the path", False),
    ("connection refused", "connection refused", _REFUSED_ADVICE, True),
    ("timeout expired", "no answer within the connect timeout", _REFUSED_ADVICE, True),
    ("timed out", "no answer within the connect timeout", _REFUSED_ADVICE, True),
    ("starting up", "the server is starting up", "wait for it", True),
    ("shutting down", "the server is shutting down", "wait for it to come back", True),
    ("server closed the connection", "the server closed the connection", "check the server's log", True),
)


def unreachable(error: BaseException) -> Unreachable | None:
    """What ``error`` says about reaching the database; ``None`` when it is not about reaching it
    (a statement that failed, say). An unrecognised driver error counts as transient."""
    if not isinstance(error, OperationalError):
        return None
    text = str(error.orig).strip()
    for needle, problem, advice, transient in _UNREACHABLE:
        if needle in text.lower():
            return Unreachable(problem, advice, transient)
    return Unreachable(text.splitlines()[0] if text else type(error.orig).__name__, "check the server", True)


def location(url: URL) -> str:
    """Where ``url`` points, without its password: ``sqlite file PATH`` or ``postgresql HOST:PORT/DATABASE``."""
    if url.get_backend_name() == "sqlite":
        return f"sqlite file {url.database}"
    return f"{url.get_backend_name()} {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
