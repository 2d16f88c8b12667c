"""The full-sync DAG end to end: Airflow's test runner, the simulator over HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import requests
from sqlalchemy import Engine

from tests.support.airflow_runner import task_tries, wecom_connection
from tests.support.directory import CORP, DAG_ID, DIALECT_FREE, SECRET, latest_run, scalar, sync, table_state

pytestmark = pytest.mark.airflow


def test_full_sync_lands_the_company_and_a_rerun_changes_nothing(sim, env, target_engine: Engine) -> None:
    output = sync(env)
    run = latest_run(target_engine)
    assert run["status"] == "success", output[-3000:]
    org = sim.state.org
    assert scalar(target_engine, "SELECT COUNT(*) FROM wecom_users") == len(org.users)
    assert scalar(target_engine, "SELECT COUNT(*) FROM wecom_departments") == len(org.departments)
    assert run["users_inserted"] == len(org.users)
    assert scalar(target_engine, "SELECT path FROM wecom_departments WHERE department_id = 1") == "/1/"
    assert scalar(target_engine, "SELECT COUNT(*) FROM wecom_users WHERE name = ''") == 0
    assert SECRET not in output
    assert (run["tags_seen"], run["tags_inserted"]) == (len(org.tags), len(org.tags))
    assert run["tag_members_inserted"] == sum(len(t.users) + len(t.parties) for t in org.tags.values())
    member = org.member_list()[0]
    number = f"SELECT text_value FROM wecom_user_attributes WHERE userid = '{member.userid}' AND attr_name = '工号'"
    assert scalar(target_engine, number) == f"E{member.index:07d}"
    tag = next(t for t in org.tags.values() if t.users)
    holders = f"SELECT COUNT(DISTINCT userid) FROM wecom_tag_members_expanded WHERE tag_id = {tag.id}"
    assert scalar(target_engine, holders) >= len(tag.users)

    before = table_state(target_engine)
    output = sync(env)
    again = latest_run(target_engine)
    assert again["status"] == "success", output[-3000:]
    assert (again["users_inserted"], again["users_updated"], again["users_deleted"]) == (0, 0, 0)
    assert table_state(target_engine) == before
    assert scalar(target_engine, "SELECT COUNT(*) FROM wecom_sync_runs") == 2


def test_deleted_member_is_soft_deleted_and_revived_when_back(sim, env, target_engine: Engine) -> None:
    sync(env)
    userid = sorted(sim.state.org.users)[5]
    record = requests.get(f"{sim.base_url}/_sim/users/{userid}", timeout=5).json()
    requests.delete(f"{sim.base_url}/_sim/users/{userid}", timeout=5).raise_for_status()
    sync(env)
    assert latest_run(target_engine)["users_deleted"] == 1
    assert scalar(target_engine, f"SELECT is_deleted FROM wecom_users WHERE userid = '{userid}'") in (True, 1)
    assert scalar(target_engine, f"SELECT COUNT(*) FROM wecom_user_departments WHERE userid = '{userid}'") == 0

    requests.post(f"{sim.base_url}/_sim/users", json=record, timeout=5).raise_for_status()
    sync(env)
    assert latest_run(target_engine)["users_revived"] == 1
    assert scalar(target_engine, f"SELECT is_deleted FROM wecom_users WHERE userid = '{userid}'") in (False, 0)


def test_incomplete_snapshot_deletes_nothing_and_is_partial(sim, env, target_engine: Engine) -> None:
    sync(env)
    users_before = scalar(target_engine, "SELECT COUNT(*) FROM wecom_users WHERE NOT is_deleted")
    hidden = sorted(sim.state.org.departments)[3]
    sim.add_fault("user/list", errcode=60011, match={"department_id": str(hidden)}, times=None)
    output = sync(env)
    run = latest_run(target_engine)
    assert run["status"] == "partial", output[-3000:]
    assert str(hidden) in run["message"] and "60011" in run["message"]
    assert run["users_deleted"] == 0
    assert scalar(target_engine, "SELECT COUNT(*) FROM wecom_users WHERE NOT is_deleted") == users_before


def _serve_departments(sim, change: Callable[[list[dict]], None]) -> None:
    """Make department/list answer the simulator's departments as ``change`` edits them, for good."""
    departments = requests.get(
        f"{sim.base_url}/cgi-bin/department/list",
        params={"access_token": _token(sim)},
        timeout=5,
    ).json()["department"]
    change(departments)
    sim.add_fault(
        "department/list", body=json.dumps({"errcode": 0, "errmsg": "ok", "department": departments}), times=None
    )


def test_quality_check_failure_loads_nothing_and_is_not_retried(sim, env, target_engine: Engine) -> None:
    env["AIRFLOW_VAR_WECOM_COMPANIES"] = json.dumps([{"name": "default", "retries": 2}])
    _serve_departments(sim, lambda departments: departments[2].update(parentid=987654))  # a parent WeCom never sent
    output = sync(env)
    assert "987654" in output and "quality" in output.lower()
    assert scalar(target_engine, "SELECT COUNT(*) FROM wecom_users") == 0
    run = latest_run(target_engine)
    assert run["status"] == "failed"
    assert task_tries(DAG_ID, "quality_checks") == (1, "failed"), "bad data must not be retried"
    assert run["message"].startswith("task quality_checks failed: snapshot failed its quality checks")
    assert "\n" not in run["message"]


def test_a_record_that_breaks_a_data_contract_fails_the_run_once_in_one_line(sim, env, target_engine: Engine) -> None:
    env["AIRFLOW_VAR_WECOM_COMPANIES"] = json.dumps([{"name": "default", "retries": 2}])
    _serve_departments(sim, lambda departments: departments[2].update(parentid="not-a-number"))
    output = sync(env)
    assert task_tries(DAG_ID, "transform") == (1, "failed"), "bad data must not be retried"
    run = latest_run(target_engine)
    assert (run["status"], run["message"]) == (
        "failed",
        "task transform failed: every department record carries a numeric id and parentid: "
        "1 department record(s) do not, staged line(s) 3",
    ), output[-3000:]
    assert scalar(target_engine, "SELECT COUNT(*) FROM wecom_departments") == 0


@DIALECT_FREE
def test_wrong_secret_fails_extract_once_with_advice(sim, env, target_engine: Engine) -> None:
    env["AIRFLOW_CONN_WECOM_DEFAULT"] = wecom_connection(sim.base_url, CORP, "not-the-secret")
    output = sync(env)
    assert "40001" in output and "wecom_default" in output
    assert "not-the-secret" not in output
    assert sim.calls.get("gettoken", 0) == 1
    assert latest_run(target_engine)["status"] == "failed"


@DIALECT_FREE
def test_unreachable_target_fails_before_any_wecom_call(sim, env, target_engine: Engine) -> None:
    env["AIRFLOW_CONN_WECOM_TARGET_DB"] = json.dumps(
        {"conn_type": "postgres", "host": "127.0.0.1", "port": 9, "login": "x", "schema": "x"}
    )
    output = sync(env)
    assert "ensure_schema" in output
    assert sum(sim.calls.values()) == 0


@DIALECT_FREE
def test_malformed_answer_names_the_endpoint_and_loads_nothing(sim, env, target_engine: Engine) -> None:
    sim.add_fault("department/list", body="<html>bad gateway</html>", times=None)
    output = sync(env)
    assert "department/list" in output
    assert scalar(target_engine, "SELECT COUNT(*) FROM wecom_departments") == 0


def _token(sim) -> str:
    answer = requests.get(f"{sim.base_url}/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET}, timeout=5)
    return answer.json()["access_token"]


def test_unchanged_resync_skips_transform_and_load_until_wecom_changes(sim, env, target_engine: Engine) -> None:
    env["AIRFLOW_VAR_WECOM_COMPANIES"] = json.dumps([{"name": "default", "retries": 0, "freshness_minutes": 0}])
    sync(env, conf={"force": False})
    before = table_state(target_engine)
    output = sync(env, conf={"force": False})
    again = latest_run(target_engine)
    assert again["status"] == "unchanged", output[-3000:]
    assert table_state(target_engine) == before
    ran = lambda task: f"running task <TaskInstance: wecom_directory_sync.{task} " in output  # noqa: E731
    assert not any(ran(task) for task in ("transform", "quality_checks", "load"))
    assert ran("summarize") and "status: unchanged" in output

    userid = sorted(sim.state.org.users)[3]
    requests.patch(f"{sim.base_url}/_sim/users/{userid}", json={"position": "架构师"}, timeout=5).raise_for_status()
    output = sync(env, conf={"force": False})
    changed = latest_run(target_engine)
    assert (changed["status"], changed["users_updated"]) == ("success", 1), output[-3000:]
    assert "differs: other records from WeCom" in output
