"""The directory as datasets: each table's Airflow asset URI and OpenLineage name, and WeCom as the source.

Airflow identifies an asset by name and URI, and the form consumers write most,
``Asset("postgres://…")``, sets the name to the URI: so a table's asset is named by its URI,
which a consumer's ``Asset(uri)``, ``Asset.ref(uri=…)`` and ``Asset.ref(name=…)`` all match.

* PostgreSQL: ``postgres://host:port/database/schema/table``, exactly what the postgres provider's
  ``sanitize_uri`` keeps as it is (and what astronomer-cosmos emits for the same table);
  OpenLineage namespace ``postgres://host:port``, name ``database.schema.table`` (its naming spec).
* SQLite, which neither Airflow nor the OpenLineage spec names: ``sqlite://localhost/<absolute file
  path>/<table>``, registered by this package (the ``asset-uris`` entry of ``wecom.provider_info``,
  normalizer ``sanitize_sqlite_uri``); OpenLineage namespace ``sqlite://localhost``, name
  ``<file path>/<table>``, so namespace and name join into the asset URI as the spec asks.
  ``localhost``: the file lives on the machine that runs the task.
* WeCom itself: namespace ``wecom://<corp_id>``, one dataset per entity (``department``, ``user``).

``table_location`` derives both names from the target connection, so the asset events and the
lineage of a run can never name different tables; a connection they cannot be derived from (an
SQLite file given by a relative path, a PostgreSQL connection without host or database) raises
``TargetLocationError`` in one line naming it. Standard library only: the URI normalizer is
loaded by every Airflow process that builds an ``sqlite`` asset.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import SplitResult, quote, unquote

from wecom.errors import TargetLocationError
from wecom.tables import directory_tables

POSTGRES_PORT = 5432
DEFAULT_PG_SCHEMA = "public"
SQLITE_HOST = "localhost"
SOURCE_SCHEME = "wecom"
# OpenLineage dataset name of each WeCom entity -> the extraction manifest's count of its records.
SOURCE_ENTITIES = {"department": "departments", "user": "users"}
EVENTS_TABLE = "wecom_callback_events"
ASSET_GROUP = "wecom"
ALIAS_BASE = "wecom_directory"
_SEARCH_PATH = re.compile(r"search_path\s*=\s*(.+)")
# wecom.tables' column types as lineage schema types.
_FIELD_TYPES = {
    "string": "string",
    "int64": "integer",
    "Int64": "integer",
    "boolean": "boolean",
    "timestamp": "timestamp",
}


class ConnectionLike(Protocol):
    conn_id: str | None
    conn_type: str | None
    host: str | None
    schema: str | None
    port: int | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TableLocation:
    """Where a company's tables live, as the asset URIs and OpenLineage names need it."""

    scheme: str  # postgres | sqlite
    authority: str  # host:port | localhost
    database: str  # the database's name | the SQLite file's absolute path
    schema: str | None = None  # PostgreSQL only

    @property
    def namespace(self) -> str:
        """The OpenLineage dataset namespace of every table here."""
        return f"{self.scheme}://{self.authority}"

    def asset_uri(self, table: str) -> str:
        """The table's asset URI (and name), already in the form Airflow normalizes it to."""
        if self.scheme == "sqlite":
            return f"{self.namespace}{quote(self.database)}/{quote(table, safe='')}"
        parts = (self.database, self.schema or DEFAULT_PG_SCHEMA, table)
        return "/".join([self.namespace, *(quote(part, safe="") for part in parts)])

    def lineage_name(self, table: str) -> str:
        """The table's OpenLineage dataset name within ``namespace``."""
        if self.scheme == "sqlite":
            return f"{self.database.lstrip('/')}/{table}"
        return f"{self.database}.{self.schema or DEFAULT_PG_SCHEMA}.{table}"


def table_location(conn: ConnectionLike) -> TableLocation:
    """The location of the tables a ``postgres`` or ``sqlite`` target connection holds."""
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        return _sqlite_location(conn)
    if conn_type in {"postgres", "postgresql"}:
        return _postgres_location(conn)
    raise TargetLocationError(
        f"connection {conn.conn_id!r} has type {conn.conn_type!r}; the target database must be "
        "a sqlite or postgres connection"
    )


def _sqlite_location(conn: ConnectionLike) -> TableLocation:
    path = (conn.host or conn.schema or "").strip()
    if not path or path == ":memory:":
        raise TargetLocationError(f"sqlite connection {conn.conn_id!r} has no database file path in host")
    if not posixpath.isabs(path):
        raise TargetLocationError(
            f"sqlite connection {conn.conn_id!r}: the database file {path!r} is a relative path, which each "
            "Airflow process would resolve from its own working folder: give the absolute path in host"
        )
    return TableLocation("sqlite", SQLITE_HOST, posixpath.normpath(path))


def _postgres_location(conn: ConnectionLike) -> TableLocation:
    host = (conn.host or "").strip()
    if not host or host.startswith("/") or re.search(r"[\s/?#@]", host.strip("[]")):
        shown = f"host {host!r}" if host else "an empty host"
        raise TargetLocationError(
            f"postgres connection {conn.conn_id!r} has {shown}, which cannot name its tables' assets and "
            "lineage: set host to the server's host name or IP address (not a Unix socket folder)"
        )
    database = (conn.schema or "").strip()
    if not database:
        raise TargetLocationError(
            f"postgres connection {conn.conn_id!r} names no database: set schema to the database the tables live in"
        )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    return TableLocation("postgres", f"{host}:{conn.port or POSTGRES_PORT}", database, _search_schema(conn))


def _search_schema(conn: ConnectionLike) -> str:
    """The schema unqualified tables are created in: the first entry of a ``search_path`` the
    connection's libpq ``options`` set (``-c search_path=...``), ``public`` otherwise."""
    options = str(conn.extra_dejson.get("options") or "")
    for word in shlex.split(options):
        if match := _SEARCH_PATH.search(word):
            for entry in match.group(1).split(","):
                schema = entry.strip().strip('"')
                if schema and schema != "$user":
                    return schema
    return DEFAULT_PG_SCHEMA


def sanitize_sqlite_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normalizer for ``sqlite`` asset URIs (``asset-uris`` in the provider info).

    ``sqlite:///data/wecom.db/wecom_users`` and ``sqlite://localhost/data/wecom.db/wecom_users`` name
    the same table; both become the latter, which Python's URL functions keep as it is (without a
    host, ``sqlite:///x`` would come back as ``sqlite:/x``).
    """
    if uri.netloc.lower() not in ("", SQLITE_HOST):
        raise ValueError(f"URI format sqlite:// names a local file: sqlite://{SQLITE_HOST}/<absolute path>/<table>")
    path = "/" + uri.path.lstrip("/")
    if path.count("/") < 2:
        raise ValueError("URI format sqlite:// must contain the database file's absolute path and a table name")
    return uri._replace(netloc=SQLITE_HOST, path=path)


def sqlite_lineage_dataset(uri: SplitResult) -> tuple[str, str]:
    """OpenLineage (namespace, name) of an ``sqlite`` asset URI: the same as ``TableLocation`` gives."""
    normalized = sanitize_sqlite_uri(uri)
    return f"sqlite://{SQLITE_HOST}", unquote(normalized.path).lstrip("/")


def source_namespace(corp_id: str) -> str:
    """The OpenLineage namespace of one WeCom company's directory."""
    return f"{SOURCE_SCHEME}://{corp_id}"


@dataclass(frozen=True)
class LineageDataset:
    """One OpenLineage dataset as a run reports it: where, its columns, and how many rows it read or wrote."""

    namespace: str
    name: str
    fields: tuple[tuple[str, str], ...] = ()
    row_count: int | None = None


def table_datasets(location: TableLocation, changed: Mapping[str, Mapping[str, int]]) -> list[LineageDataset]:
    """Every directory table as a written dataset: its columns from ``wecom.tables``, and as row count
    the rows the run inserted, updated, deleted or revived there (``changed``, 0 when absent)."""
    return [
        LineageDataset(
            location.namespace,
            location.lineage_name(table),
            tuple((name, _FIELD_TYPES[kind]) for name, kind in columns.items()),
            sum(changed.get(table, {}).values()),
        )
        for table, columns in directory_tables().items()
    ]


def source_datasets(corp_id: str, manifest: Mapping[str, Any] | None = None) -> list[LineageDataset]:
    """WeCom's entities of one company, with the records an extraction ``manifest`` counted of each."""
    return [
        LineageDataset(source_namespace(corp_id), entity, row_count=None if manifest is None else manifest.get(key))
        for entity, key in SOURCE_ENTITIES.items()
    ]


def events_dataset(location: TableLocation) -> LineageDataset:
    """The stored callback events, which the callback path reads."""
    return LineageDataset(location.namespace, location.lineage_name(EVENTS_TABLE))


def alias_name(company: str) -> str:
    """The asset alias a company's table events go through, for "any table of company X":
    ``wecom_directory`` for the default company, ``wecom_directory__<name>`` for others (as DAG ids)."""
    return ALIAS_BASE if company == "default" else f"{ALIAS_BASE}__{company}"


def asset_events(
    location: TableLocation, changed: Mapping[str, Mapping[str, int]], facts: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """``(asset URI, event extra)`` for each table a run changed, in table order: ``facts`` (company,
    run, observation time, degraded groups) and the table's own counts. A run that changed nothing
    emits nothing."""
    return [
        (location.asset_uri(table), {**facts, "table": table, **changed[table]})
        for table in directory_tables()
        if table in changed
    ]
