"""The dbt project's sources (include/dbt/models/sources.yml) against the tables the DAG creates.

Reads the YAML only: no dbt, no database server. `tests/integration/test_dbt_project.py` runs
dbt itself on a PostgreSQL the DAG loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, inspect

from wecom.store.loader import DirectoryLoader

PROJECT = Path(__file__).resolve().parents[2] / "include" / "dbt"
SOURCES = "include/dbt/models/sources.yml"


@pytest.fixture(scope="module")
def created() -> dict[str, list[str]]:
    """Every table ensure_schema creates, with its columns in DDL order."""
    engine = create_engine("sqlite://")
    DirectoryLoader(engine).ensure_schema()
    schema = inspect(engine)
    tables = {t: [c["name"] for c in schema.get_columns(t)] for t in schema.get_table_names()}
    engine.dispose()
    return tables


@pytest.fixture(scope="module")
def sources() -> dict[str, dict]:
    (source,) = yaml.safe_load((PROJECT / "models" / "sources.yml").read_text(encoding="utf-8"))["sources"]
    return {table["name"]: table for table in source["tables"]}


def test_every_table_the_dag_creates_is_a_source_with_every_column_described(created, sources) -> None:
    missing, gone = sorted(created.keys() - sources.keys()), sorted(sources.keys() - created.keys())
    assert not missing, f"add {missing} to {SOURCES} (descriptions from docs/tables.md, key test, freshness if any)"
    assert not gone, f"{gone} in {SOURCES} is no table the DDL creates"
    for table, columns in created.items():
        described = {c["name"]: c.get("description", "").strip() for c in sources[table].get("columns", [])}
        assert sorted(described) == sorted(columns), f"{table}: the columns in {SOURCES} differ from the DDL's"
        assert all(described.values()), f"{table}: a column without a description"
        assert sources[table].get("description", "").strip(), f"{table} has no description"


def test_every_table_with_a_freshness_says_how_to_measure_it(sources) -> None:
    """PostgreSQL has no metadata freshness: without a loaded_at_field or query dbt would measure nothing."""
    fresh = {name: t["config"] for name, t in sources.items() if t.get("config", {}).get("freshness")}
    assert {"wecom_users", "wecom_departments", "wecom_user_departments", "wecom_sync_runs"} <= set(fresh)
    for name, config in fresh.items():
        assert config.get("loaded_at_field") or config.get("loaded_at_query"), name
    assert fresh["wecom_sync_runs"]["loaded_at_field"] == "finished_at"


def test_every_source_table_has_its_key_tested_unique(created, sources) -> None:
    for table in created:
        tests = [t for t in sources[table].get("data_tests", []) if isinstance(t, dict) and "wecom_unique_key" in t]
        assert tests, f"{table}: no wecom_unique_key test"
