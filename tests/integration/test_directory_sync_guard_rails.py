"""History, backfills and guard rails through Airflow: skips, the deletion guard, dry runs, companies, PII."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine

from tests.support.airflow_runner import run_airflow, run_dag, task_tries, wecom_connection
from tests.support.directory import CORP, DAG_ID, DIALECT_FREE, latest_run, scalar, sync, table_state
from wecom_simulator.org import generate_org
from wecom_simulator.testing import running_simulator

pytestmark = pytest.mark.airflow


def run_statuses(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.exec_driver_sql("SELECT status FROM wecom_sync_runs ORDER BY logical_date")]


def test_backfill_over_missed_days_extracts_once(sim, env, target_engine: Engine) -> None:
    for day in range(1, 4):
        output = sync(env, conf={"force": False}, logical_date=f"2026-11-0{day}")
    assert sim.calls.get("department/list") == 1, sim.calls
    assert run_statuses(target_engine) == ["success", "skipped", "skipped"], output[-2000:]
    assert "already covers this run" in latest_run(target_engine)["message"]

    sync(env, conf={"force": True}, logical_date="2026-11-02")
    assert sim.calls.get("department/list") == 2


def test_guard_trips_when_half_the_company_vanishes(sim, env, target_engine: Engine) -> None:
    env["AIRFLOW_VAR_WECOM_COMPANIES"] = json.dumps([{"name": "default", "retries": 2}])
    sync(env)
    before = table_state(target_engine)
    for userid in sorted(sim.state.org.users)[::2]:
        sim.state.delete_user(userid)
    output = sync(env)
    run = latest_run(target_engine)
    assert run["status"] == "guard_tripped", output[-3000:]
    assert task_tries(DAG_ID, "load") == (1, "failed"), "a tripped guard is not retried"
    assert "allow_mass_delete" in run["message"] and "of 120 users" in run["message"]
    assert "allow_mass_delete" in output
    assert table_state(target_engine) == before

    sync(env, conf={"allow_mass_delete": True})
    assert latest_run(target_engine)["status"] == "success"
    assert scalar(target_engine, "SELECT COUNT(*) FROM wecom_users WHERE is_deleted") == 60


def test_dry_run_records_the_plan_and_changes_nothing(sim, env, target_engine: Engine) -> None:
    sync(env)
    before = table_state(target_engine)
    userid = sorted(sim.state.org.users)[3]
    sim.state.update_user(userid, {"name": "改名了"})
    # dry_run alone, within the freshness window of the first run: it plans all the same.
    output = run_dag(DAG_ID, env, conf={"dry_run": True})
    run = latest_run(target_engine)
    assert run["status"] == "dry_run", output.stdout[-2000:] + output.stderr[-2000:]
    plan = json.loads(run["plan"])
    assert plan["wecom_users"]["updated"] == 1 and plan["wecom_users"]["samples"]["updated"] == [userid]
    assert table_state(target_engine) == before


@DIALECT_FREE
def test_unknown_run_conf_key_is_rejected_with_the_allowed_keys(sim, env, target_engine: Engine) -> None:
    output = sync(env, conf={"dryrun": True})
    assert "unknown run conf key(s) 'dryrun'" in output and "allowed keys: allow_mass_delete, dry_run, force" in output
    assert sum(sim.calls.values()) == 0


def test_pii_hash_and_drop_reach_current_and_history(sim, env, target_engine: Engine) -> None:
    env["AIRFLOW_VAR_WECOM_COMPANIES"] = json.dumps(
        [{"name": "default", "retries": 0, "pii": {"mobile": "hash", "email": "drop", "address": "keep"}}]
    )
    env["AIRFLOW_VAR_WECOM_PII_SALT"] = "pepper-for-tests"
    output = sync(env)
    assert latest_run(target_engine)["status"] == "success", output[-3000:]
    assert "pepper-for-tests" not in output
    records = (requests.get(f"{sim.base_url}/_sim/users/{u}", timeout=5).json() for u in sorted(sim.state.org.users))
    member = next(r for r in records if r.get("mobile"))
    expected = hashlib.sha256(b"pepper-for-tests" + member["mobile"].encode()).hexdigest()
    for table in ("wecom_users", "wecom_users_history"):
        assert scalar(target_engine, f"SELECT mobile FROM {table} WHERE userid = '{member['userid']}'") == expected
        assert scalar(target_engine, f"SELECT COUNT(*) FROM {table} WHERE email IS NOT NULL") == 0


def test_two_companies_side_by_side(sim, env, target_engine: Engine, tmp_path: Path) -> None:
    org = generate_org(seed=11, members=40, departments=6)
    with running_simulator(org, corp_id="wwsecond", secret="second-secret") as second:
        env["AIRFLOW_CONN_WECOM_SECOND"] = wecom_connection(second.base_url, "wwsecond", "second-secret")
        env["AIRFLOW_VAR_WECOM_COMPANIES"] = json.dumps(
            [
                {"name": "default", "retries": 0},
                {"name": "second", "wecom_conn_id": "wecom_second", "retries": 0, "schedule": "0 3 * * *"},
            ]
        )
        sync(env)
        output = sync(env, dag_id="wecom_directory_sync__second")
        assert "success" in run_statuses(target_engine), output[-3000:]
        count = "SELECT COUNT(*) FROM wecom_users WHERE corp_id = '{}'"
        assert scalar(target_engine, count.format(CORP)) == 120
        assert scalar(target_engine, count.format("wwsecond")) == 40

        env["AIRFLOW_CONN_WECOM_SECOND"] = wecom_connection(second.base_url, "wwsecond", "wrong-secret")
        sync(env, dag_id="wecom_directory_sync__second")
        assert scalar(target_engine, count.format(CORP)) == 120
        assert scalar(target_engine, count.format("wwsecond")) == 40


def test_malformed_company_config_is_an_import_error_naming_the_key(airflow_metadata: Path) -> None:
    bad = json.dumps([{"name": "default", "schedul": "@hourly"}])
    listed = run_airflow(["dags", "list-import-errors", "--local", "-o", "json"], {"AIRFLOW_VAR_WECOM_COMPANIES": bad})
    assert "wecom_companies[0].schedul: unknown key" in listed.stdout, listed.stdout + listed.stderr[-2000:]
    # Listed against the configuration check, not the DAG files, whose other companies' DAGs stay active.
    assert "wecom_companies.py" in listed.stdout and "wecom_directory_sync.py" not in listed.stdout
