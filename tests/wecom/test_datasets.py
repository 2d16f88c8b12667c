"""The tables as datasets: asset URIs and OpenLineage names from one location, which bad connections cannot give."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from wecom.datasets import (
    EVENTS_TABLE,
    asset_events,
    events_dataset,
    sanitize_sqlite_uri,
    source_datasets,
    sqlite_lineage_dataset,
    table_datasets,
    table_location,
)
from wecom.errors import TargetLocationError
from wecom.tables import TABLES, directory_tables


def conn(conn_type: str, host: str | None = None, schema: str | None = None, port: int | None = None, **extra: Any):
    return SimpleNamespace(
        conn_id="wecom_target_db", conn_type=conn_type, host=host, schema=schema, port=port, extra_dejson=extra
    )


def test_postgres_tables_are_named_as_the_postgres_provider_and_the_openlineage_spec_name_them() -> None:
    location = table_location(conn("postgres", "db.example.com", "directory"))
    assert location.asset_uri("wecom_users") == "postgres://db.example.com:5432/directory/public/wecom_users"
    assert (location.namespace, location.lineage_name("wecom_users")) == (
        "postgres://db.example.com:5432",
        "directory.public.wecom_users",
    )
    # namespace + name, dots as slashes: what astronomer-cosmos turns an OpenLineage dataset into
    cosmos = location.namespace + "/" + location.lineage_name("wecom_users").replace(".", "/")
    assert cosmos == location.asset_uri("wecom_users")


def test_postgres_port_ipv6_host_and_the_schema_a_search_path_option_sets() -> None:
    location = table_location(conn("postgresql", "::1", "wecom", 6432, options="-c search_path=directory,public"))
    assert location.asset_uri("wecom_users") == "postgres://[::1]:6432/wecom/directory/wecom_users"
    assert location.lineage_name("wecom_users") == "wecom.directory.wecom_users"
    user_first = table_location(conn("postgres", "h", "wecom", options='-c search_path="$user",hr'))
    assert user_first.schema == "hr"


def test_sqlite_tables_are_named_by_their_absolute_file_path() -> None:
    location = table_location(conn("sqlite", "/var/lib//wecom/target.db"))
    uri = location.asset_uri("wecom_users")
    assert uri == "sqlite://localhost/var/lib/wecom/target.db/wecom_users"
    assert (location.namespace, location.lineage_name("wecom_users")) == (
        "sqlite://localhost",
        "var/lib/wecom/target.db/wecom_users",
    )
    assert location.namespace + "/" + location.lineage_name("wecom_users") == uri
    # the URI is a fixed point of Python's URL functions and of the normalizer Airflow applies
    assert urlunsplit(sanitize_sqlite_uri(urlsplit(uri))) == uri
    assert sqlite_lineage_dataset(urlsplit(uri)) == (location.namespace, location.lineage_name("wecom_users"))
    spaced = table_location(conn("sqlite", schema="/data/my wecom.db"))
    assert spaced.asset_uri("wecom_users") == "sqlite://localhost/data/my%20wecom.db/wecom_users"
    assert sqlite_lineage_dataset(urlsplit(spaced.asset_uri("wecom_users")))[1] == "data/my wecom.db/wecom_users"


@pytest.mark.parametrize(
    "written",
    [
        "sqlite:///data/wecom.db/wecom_users",
        "sqlite:////data/wecom.db/wecom_users",
        "sqlite://LOCALHOST/data/wecom.db/wecom_users",
    ],
)
def test_every_spelling_of_a_local_sqlite_uri_normalizes_to_one(written: str) -> None:
    normalized = urlunsplit(sanitize_sqlite_uri(urlsplit(written)))
    assert normalized == "sqlite://localhost/data/wecom.db/wecom_users"


@pytest.mark.parametrize("written", ["sqlite://fileserver/data/wecom.db/wecom_users", "sqlite:///wecom.db"])
def test_a_sqlite_uri_on_another_host_or_without_a_table_is_refused(written: str) -> None:
    with pytest.raises(ValueError, match=r"URI format sqlite://"):
        sanitize_sqlite_uri(urlsplit(written))


@pytest.mark.parametrize(
    ("connection", "says"),
    [
        (conn("sqlite", "wecom.db"), "the database file 'wecom.db' is a relative path"),
        (conn("sqlite"), "has no database file path in host"),
        (conn("sqlite", ":memory:"), "has no database file path in host"),
        (conn("postgres", None, "wecom"), "has an empty host"),
        (conn("postgres", "/var/run/postgresql", "wecom"), "host '/var/run/postgresql'"),
        (conn("postgres", "db", None), "names no database"),
        (conn("mysql", "db", "wecom"), "has type 'mysql'"),
    ],
)
def test_a_connection_that_cannot_name_its_tables_fails_in_one_line_naming_it(connection, says: str) -> None:
    with pytest.raises(TargetLocationError) as error:
        table_location(connection)
    message = str(error.value)
    assert "'wecom_target_db'" in message and says in message and "\n" not in message


def test_written_datasets_are_every_directory_table_with_its_columns_and_the_rows_changed() -> None:
    location = table_location(conn("postgres", "db", "wecom"))
    changed = {"wecom_users": {"inserted": 2, "updated": 1, "deleted": 0, "revived": 1}}
    datasets = {d.name: d for d in table_datasets(location, changed)}
    assert sorted(datasets) == sorted(f"wecom.public.{t}" for t in directory_tables())
    users = datasets["wecom.public.wecom_users"]
    assert (users.namespace, users.row_count) == ("postgres://db:5432", 4)
    assert dict(users.fields) == {
        **{
            c: t.replace("Int64", "integer").replace("int64", "integer")
            for c, t in TABLES["wecom_users"].dtypes.items()
        },
        **dict.fromkeys(("first_seen_at", "last_seen_at", "deleted_at", "updated_at", "observed_at"), "timestamp"),
        "is_deleted": "boolean",
        "out_of_scope": "boolean",
    }
    assert {"valid_from", "valid_to", "ended_by", "change_source", "run_id"} <= dict(
        datasets["wecom.public.wecom_users_history"].fields
    ).keys()
    assert datasets["wecom.public.wecom_departments"].row_count == 0


def test_wecom_is_one_dataset_per_entity_counted_by_the_extraction() -> None:
    assert [(d.namespace, d.name, d.row_count) for d in source_datasets("ww1", {"departments": 3, "users": 9})] == [
        ("wecom://ww1", "department", 3),
        ("wecom://ww1", "user", 9),
    ]
    assert {d.row_count for d in source_datasets("ww1")} == {None}
    assert events_dataset(table_location(conn("sqlite", "/t.db"))).name == f"t.db/{EVENTS_TABLE}"


def test_asset_events_go_to_the_changed_tables_only_each_with_its_own_counts() -> None:
    location = table_location(conn("sqlite", "/srv/t.db"))
    facts = {"company": "acme", "corp_id": "ww1", "run_id": "r1", "observed_at": "2026-01-01T00:00:00+00:00"}
    changed = {
        "wecom_users": {"inserted": 0, "updated": 2, "deleted": 0, "revived": 0},
        "wecom_users_history": {"inserted": 0, "updated": 2, "deleted": 0, "revived": 0},
    }
    events = asset_events(location, changed, facts)
    assert [uri for uri, _ in events] == [
        "sqlite://localhost/srv/t.db/wecom_users",
        "sqlite://localhost/srv/t.db/wecom_users_history",
    ]
    assert events[0][1] == {**facts, "table": "wecom_users", "inserted": 0, "updated": 2, "deleted": 0, "revived": 0}
    assert asset_events(location, {}, facts) == []
