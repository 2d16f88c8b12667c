"""Reading the directory tables and running the full-sync DAG, for integration tests."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from tests.support.airflow_runner import run_dag

DAG_ID = "wecom_directory_sync"
# For a DAG run whose outcome does not depend on the target's dialect (it fails before loading, or the
# target is replaced): one run on SQLite instead of one per dialect, since DAG runs are the suite's cost.
DIALECT_FREE = pytest.mark.parametrize("target_engine", ["sqlite"], indirect=True)
CORP = "wwintegration"
SECRET = "integration-secret-value"


def scalar(engine: Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def table_state(engine: Engine) -> dict[str, list[tuple]]:
    tables = {
        "wecom_users": "userid, name, row_hash, is_deleted, updated_at",
        "wecom_departments": "department_id, path, depth, row_hash, is_deleted, updated_at",
        "wecom_user_departments": "userid, department_id, sort_order, is_leader, is_main",
        "wecom_department_leaders": "department_id, userid",
        "wecom_user_direct_leaders": "userid, leader_userid",
        "wecom_department_closure": "ancestor_id, descendant_id, distance",
        "wecom_tags": "tag_id, tag_name, row_hash, is_deleted, updated_at",
        "wecom_tag_users": "tag_id, userid",
        "wecom_tag_departments": "tag_id, department_id",
        "wecom_user_attributes": "userid, attr_name, attr_type, text_value, web_url, row_hash, updated_at",
    }
    with engine.connect() as conn:
        return {t: sorted(map(tuple, conn.execute(text(f"SELECT {c} FROM {t}")))) for t, c in tables.items()}


def latest_run(engine: Engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT * FROM wecom_sync_runs ORDER BY finished_at DESC")).mappings().first())


def sync(env: dict[str, str], conf: dict | None = None, dag_id: str = DAG_ID, logical_date: str | None = None) -> str:
    """One run through ``airflow dags test``; forced, since these tests re-sync within the freshness window."""
    result = run_dag(dag_id, env, conf={"force": True} | (conf or {}), logical_date=logical_date)
    return result.stdout + result.stderr
