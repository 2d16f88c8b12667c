"""Airflow and OpenLineage agree with ``wecom.datasets``: Airflow keeps the tables' URIs as they are, and
the providers' converters name an asset on a table as the operators' lineage does."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

from wecom.datasets import LineageDataset, table_location
from wecom.lineage import operator_lineage


def conn(conn_type: str, host: str, schema: str | None = None, **extra: Any) -> SimpleNamespace:
    return SimpleNamespace(
        conn_id="wecom_target_db", conn_type=conn_type, host=host, schema=schema, port=None, extra_dejson=extra
    )


LOCATIONS = {
    "postgres": table_location(conn("postgres", "db.example.com", "directory", options="-c search_path=hr")),
    "sqlite": table_location(conn("sqlite", "/srv/airflow/wecom.db")),
}


@pytest.mark.parametrize("kind", sorted(LOCATIONS))
def test_airflow_keeps_a_table_uri_as_it_is_so_name_and_uri_match_what_consumers_write(kind: str) -> None:
    uri = LOCATIONS[kind].asset_uri("wecom_users")
    written_by_a_consumer = Asset(uri)
    assert (written_by_a_consumer.name, written_by_a_consumer.uri) == (uri, uri)
    assert written_by_a_consumer.normalized_uri == uri  # the scheme's normalizer is registered and agrees


def test_other_spellings_of_an_sqlite_table_normalize_to_its_uri() -> None:
    uri = LOCATIONS["sqlite"].asset_uri("wecom_users")
    assert Asset(uri="sqlite:///srv/airflow/wecom.db/wecom_users").uri == uri


@pytest.mark.parametrize("kind", sorted(LOCATIONS))
def test_the_providers_converters_name_a_table_asset_as_the_operators_lineage_does(kind: str) -> None:
    location = LOCATIONS[kind]
    converter = ProvidersManagerTaskRuntime().asset_to_openlineage_converters[kind]
    dataset = converter(Asset(location.asset_uri("wecom_users")), None)
    assert (dataset.namespace, dataset.name) == (location.namespace, location.lineage_name("wecom_users"))


def test_operator_lineage_carries_schemas_and_row_counts_and_leaves_unknown_counts_out() -> None:
    lineage = operator_lineage(
        [LineageDataset("wecom://ww1", "user", row_count=9), LineageDataset("wecom://ww1", "department")],
        [LineageDataset("sqlite://localhost", "t.db/wecom_users", (("userid", "string"),), 3)],
    )
    (user, department), (users,) = lineage.inputs, lineage.outputs
    assert user.inputFacets["inputStatistics"].rowCount == 9 and department.inputFacets == {}
    assert users.outputFacets["outputStatistics"].rowCount == 3
    assert [(f.name, f.type) for f in users.facets["schema"].fields] == [("userid", "string")]
