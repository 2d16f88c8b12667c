"""Why a target database could not be reached, from the driver's real errors: fixable by waiting or not."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.dialects.postgresql.psycopg2 import EXECUTEMANY_VALUES_PLUS_BATCH
from sqlalchemy.exc import OperationalError

from wecom.store.engine import EXECUTEMANY_PAGE_SIZE, create_target_engine, location, unreachable


def connect_error(url: str) -> OperationalError:
    engine = create_target_engine(url, timeout_s=2)
    with pytest.raises(OperationalError) as caught:
        engine.connect().close()
    engine.dispose()
    return caught.value


def test_an_sqlite_path_that_cannot_be_opened_is_not_retried(tmp_path: Path) -> None:
    reason = unreachable(connect_error(f"sqlite:///{tmp_path / 'missing-folder' / 'target.db'}"))
    assert reason is not None and not reason.transient
    assert reason.problem == "cannot open the SQLite file" and "folder" in reason.advice


def test_a_refused_connection_may_be_a_restart() -> None:
    reason = unreachable(connect_error("postgresql+psycopg2://wecom@127.0.0.1:9/wecom"))
    assert reason is not None and reason.transient and reason.problem == "connection refused"


def test_an_unknown_host_name_is_not_retried() -> None:
    reason = unreachable(connect_error("postgresql+psycopg2://wecom@no-such-host.invalid:5432/wecom"))
    assert reason is not None and not reason.transient and reason.problem == "unknown host name"


def test_an_unrecognised_driver_error_is_shown_as_is_and_retried(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    with pytest.raises(OperationalError) as caught, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    reason = unreachable(caught.value)
    assert reason is not None and reason.transient and reason.problem == "no such table: no_such_table"
    assert unreachable(ValueError("not a database error")) is None


@pytest.mark.postgres
def test_an_unknown_database_or_user_is_not_retried(postgres_url: str) -> None:
    url = make_url(postgres_url)
    database = unreachable(connect_error(url.set(database="no_such_database").render_as_string(False)))
    assert database is not None and not database.transient and database.problem == "unknown database (schema)"
    user = unreachable(connect_error(url.set(username="no_such_role").render_as_string(False)))
    assert user is not None and not user.transient and user.problem == "unknown user (login)"


def test_location_names_the_place_without_the_password() -> None:
    assert location(make_url("postgresql+psycopg2://u:pw@db.example:5433/wecom")) == "postgresql db.example:5433/wecom"
    assert location(make_url("sqlite:////var/wecom/target.db")) == "sqlite file /var/wecom/target.db"


def test_many_rows_of_one_statement_reach_postgresql_in_pages_and_all_arrive(postgres_url: str) -> None:
    """psycopg2's own executemany is one round trip per row; the engine pages them (execute_batch)."""
    engine = create_target_engine(postgres_url)
    assert engine.dialect.executemany_mode is EXECUTEMANY_VALUES_PLUS_BATCH
    assert engine.dialect.executemany_batch_page_size == EXECUTEMANY_PAGE_SIZE
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE paged (n INTEGER PRIMARY KEY, label TEXT)"))
        conn.execute(text("INSERT INTO paged VALUES (:n, :label)"), [{"n": n, "label": f"#{n}"} for n in range(1234)])
        conn.execute(
            text("UPDATE paged SET label = :label WHERE n = :n"), [{"n": n, "label": "odd"} for n in range(1, 1234, 2)]
        )
        assert conn.execute(text("SELECT COUNT(*), COUNT(*) FILTER (WHERE label = 'odd') FROM paged")).one() == (
            1234,
            617,
        )
    engine.dispose()
