"""``ensure_schema`` on SQLite and PostgreSQL: all the DDL once, then one query while nothing changed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, inspect, text

from wecom.store import schema, sql
from wecom.store.schema import ddl_version, ensure_schema

ROOT = Path(__file__).resolve().parents[3]


def _clear_caches() -> None:
    for cached in (sql.read_statements, sql.read_named_statements, ddl_version):
        cached.cache_clear()


@pytest.fixture
def statements(target_engine: Engine) -> Iterator[list[str]]:
    """Every statement the engine runs from now on."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_details: object) -> None:
        seen.append(statement)

    event.listen(target_engine, "before_cursor_execute", record)
    yield seen
    event.remove(target_engine, "before_cursor_execute", record)


def test_a_current_database_costs_one_query(target_engine: Engine, statements: list[str]) -> None:
    assert ensure_schema(target_engine) is True
    assert "wecom_users" in inspect(target_engine).get_table_names()
    statements.clear()
    assert ensure_schema(target_engine) is False
    assert len(statements) == 1 and "wecom_schema_version" in statements[0]


def test_a_database_of_another_ddl_version_runs_the_ddl_and_records_this_one(target_engine: Engine) -> None:
    ensure_schema(target_engine)
    with target_engine.begin() as conn:
        conn.execute(text("UPDATE wecom_schema_version SET ddl_hash = 'made by an older version'"))
    assert ensure_schema(target_engine) is True
    with target_engine.connect() as conn:
        assert (
            conn.execute(text("SELECT ddl_hash FROM wecom_schema_version")).scalar_one()
            == ddl_version(target_engine.dialect.name)[0]
        )
    assert ensure_schema(target_engine) is False


def test_a_table_dropped_by_hand_comes_back_though_the_version_matches(target_engine: Engine) -> None:
    ensure_schema(target_engine)
    with target_engine.begin() as conn:
        conn.execute(text("DROP TABLE wecom_user_direct_leaders"))
    assert ensure_schema(target_engine) is True
    assert "wecom_user_direct_leaders" in inspect(target_engine).get_table_names()


def test_a_table_added_to_the_ddl_files_changes_the_version_and_is_created(
    target_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a new feature's tables need: a new schema file, nothing else to bump."""
    ensure_schema(target_engine)
    before = ddl_version(target_engine.dialect.name)
    copy = tmp_path / "sql"
    shutil.copytree(ROOT / "include" / "sql", copy)
    (copy / "schema" / "95_extra.sql").write_text("CREATE TABLE IF NOT EXISTS wecom_extra (id INTEGER PRIMARY KEY);\n")
    monkeypatch.setattr(sql, "sql_dir", lambda: copy)
    _clear_caches()
    try:
        after = ddl_version(target_engine.dialect.name)
        assert after[0] != before[0] and "wecom_extra" in after[1]
        assert ensure_schema(target_engine) is True
        assert "wecom_extra" in inspect(target_engine).get_table_names()
        assert ensure_schema(target_engine) is False
    finally:
        monkeypatch.undo()
        _clear_caches()


def test_the_version_covers_every_table_the_ddl_creates() -> None:
    _, tables = ddl_version("sqlite")
    assert {"wecom_users", "wecom_callback_events", "wecom_rate_budget", "wecom_schema_version"} <= set(tables)
    assert schema.ddl_version("sqlite") != schema.ddl_version("postgresql")
