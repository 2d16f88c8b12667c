"""The directory tables' columns have one definition (wecom.tables): the DDL, the dtypes and every statement agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from wecom.store.loader import DirectoryLoader
from wecom.store.sql import read_named_statements, sql_dir
from wecom.tables import HISTORY_COLUMNS, HISTORY_SUFFIX, SQL_FAMILIES, TABLES, directory_tables, history_table


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory):
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('schema') / 'target.db'}")
    DirectoryLoader(engine).ensure_schema()
    yield inspect(engine)
    engine.dispose()


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_ddl_declares_exactly_the_specified_columns(schema, table: str) -> None:
    columns = {c["name"] for c in schema.get_columns(table)}
    assert columns == set(TABLES[table].dtypes) | set(TABLES[table].bookkeeping)


@pytest.mark.parametrize("table", sorted(t for t, spec in TABLES.items() if spec.history))
def test_history_tables_version_every_content_column(schema, table: str) -> None:
    columns = {c["name"] for c in schema.get_columns(history_table(table))}
    assert columns == set(TABLES[table].dtypes) | set(HISTORY_COLUMNS)


def test_every_history_table_in_the_ddl_is_declared_so_it_gets_its_asset_and_lineage(schema) -> None:
    """A table the DDL versions but the spec does not mark ``history=True`` would get no asset events."""
    in_ddl = {t for t in schema.get_table_names() if t.endswith(HISTORY_SUFFIX)}
    assert in_ddl == {t for t in directory_tables() if t.endswith(HISTORY_SUFFIX)}


def _statement_files() -> list[Path]:
    root = sql_dir()
    return sorted(p for folder in ("merge", "deltas") for p in (root / folder).glob("*.sql"))


@pytest.mark.parametrize("path", _statement_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_statement_spells_a_content_column_list_out(path: Path) -> None:
    """A list of three or more content columns in a row is what the $<FAMILY>_VALUES tokens are for."""
    text = path.read_text(encoding="utf-8")
    for table in SQL_FAMILIES.values():
        values = TABLES[table].values
        for start in range(len(values) - 2):
            run = r",\s*".join(rf"\b:?{c}\b" for c in values[start : start + 3])
            assert not re.search(run, text), f"{path.name} lists {table} columns itself: use the tokens"


@pytest.mark.parametrize("path", _statement_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_statement_renders_with_the_column_tokens(path: Path) -> None:
    for dialect in ("sqlite", "postgresql"):
        for statement in read_named_statements(
            f"{path.parent.name}/{path.name}", dialect, table="wecom_users"
        ).values():
            assert "$" not in statement
