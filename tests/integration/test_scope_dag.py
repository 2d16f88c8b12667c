"""A department scope through ``airflow dags test``: an app's visible range declared as the scope on SQLite,
and a scoped company's full sync and callbacks on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from tests.support.airflow_runner import run_dag, wecom_connection
from tests.support.directory import CORP, SECRET, latest_run, scalar, sync
from tests.support.receiver import serving_receiver
from wecom.scope import Scope
from wecom_simulator.testing import RunningSimulator

pytestmark = pytest.mark.airflow

APP = "app-secret-with-a-visible-range"
TOKEN = "ScopeCallbackToken1"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def companies(**company: object) -> str:
    return json.dumps([{"name": "default", "retries": 0, **company}])


def flags(engine: Engine, table: str, key: str, value: object) -> tuple[bool, bool]:
    row = scalar(
        engine,
        f"SELECT CAST(is_deleted AS INTEGER) * 2 + CAST(out_of_scope AS INTEGER) FROM {table} WHERE {key} = '{value}'",
    )
    return bool(int(row) & 2), bool(int(row) & 1)


def pairs(engine: Engine, sql: str) -> set[tuple]:
    with engine.connect() as conn:
        return {tuple(row) for row in conn.execute(text(sql))}


def only_in(sim: RunningSimulator, departments: set[int]) -> list[str]:
    return sorted(m.userid for m in sim.state.org.member_list() if set(m.department) <= departments)


@pytest.mark.parametrize("target_engine", ["sqlite"], indirect=True)
def test_an_apps_visible_range_is_synced_completely_once_declared_the_scope(
    sim: RunningSimulator, env: dict[str, str], target_engine: Engine
) -> None:
    org = sim.state.org
    visible = set(org.subtree_ids(15))
    sim.state.add_app_secret(APP, "old_app")
    sim.state.set_visible_range(APP, [15])
    env["AIRFLOW_CONN_WECOM_DEFAULT"] = wecom_connection(sim.base_url, CORP, APP, max_retries=1, timeout=5)

    output = sync(env)
    partial = latest_run(target_engine)
    assert partial["status"] == "partial", output[-3000:]
    assert 'declare them as the company\'s scope ({"scope": {"include": [15]}}' in partial["message"].lower()

    env["AIRFLOW_VAR_WECOM_COMPANIES"] = companies(scope={"include": [15]})
    output = sync(env)
    declared = latest_run(target_engine)
    assert (declared["status"], declared["scope"]) == ("success", '{"include":[15],"exclude":[]}'), output[-3000:]
    assert declared["departments_seen"] == len(visible) == 8
    assert scalar(target_engine, "SELECT path FROM wecom_departments WHERE department_id = 26") == "/15/26/"

    gone, mover = only_in(sim, {26})[:2]
    sim.state.delete_user(gone)
    sim.state.update_user(mover, {"department": [20]})  # outside the app's range: user/get answers 60011
    output = sync(env)
    after = latest_run(target_engine)
    assert after["status"] == "success", output[-3000:]
    assert (after["users_deleted"], after["users_left_scope"]) == (1, 1)
    assert flags(target_engine, "wecom_users", "userid", gone) == (True, False)
    assert flags(target_engine, "wecom_users", "userid", mover) == (True, True)
    assert (
        scalar(
            target_engine, f"SELECT ended_by FROM wecom_users_history WHERE userid = '{mover}' AND valid_to IS NOT NULL"
        )
        == "out_of_scope"
    )


@pytest.fixture
def receiver_url(target_engine: Engine) -> Iterator[str]:
    with serving_receiver(
        target_engine.url, corp_id=CORP, token=TOKEN, aes_key=AES_KEY, conn_id="wecom_default"
    ) as url:
        yield url


@pytest.mark.parametrize("target_engine", ["postgresql"], indirect=True)
def test_a_scoped_company_applies_the_callbacks_of_its_scope_and_sets_the_others_aside(
    sim: RunningSimulator, env: dict[str, str], target_engine: Engine, receiver_url: str
) -> None:
    org = sim.state.org
    scope = Scope.from_option({"include": [3], "exclude": [12]})
    inside = set(scope.resolve({d: x.parentid for d, x in org.departments.items()}).departments)
    env["AIRFLOW_VAR_WECOM_COMPANIES"] = companies(scope=scope.as_option())
    env["AIRFLOW_CONN_WECOM_DEFAULT"] = wecom_connection(
        sim.base_url, CORP, SECRET, max_retries=1, timeout=5, callback_token=TOKEN, callback_aes_secret=AES_KEY
    )
    output = sync(env)
    full = latest_run(target_engine)
    assert (full["status"], full["strategy"], full["departments_seen"]) == ("success", "export", len(inside)), output[
        -3000:
    ]
    # Tags are company-wide; the tables hold their members and departments in the scope only.
    tag_users = {(g.id, m.userid) for g in org.tags.values() for m in g.users if inside & set(m.department)}
    tag_departments = {(g.id, d) for g in org.tags.values() for d in g.parties if d in inside}
    outside = {(g.id, m.userid) for g in org.tags.values() for m in g.users} - tag_users
    assert tag_users and outside, "the org has tag members on both sides of the scope"
    assert pairs(target_engine, "SELECT tag_id, userid FROM wecom_tag_users") == tag_users
    assert pairs(target_engine, "SELECT tag_id, department_id FROM wecom_tag_departments") == tag_departments
    assert (full["tags_seen"], len(tag_users) + len(tag_departments)) == (len(org.tags), full["tag_members_inserted"])

    sim.configure_callbacks(receiver_url, TOKEN, AES_KEY, ids_only=True, duplicates=1, shuffle=True)
    leaver = only_in(sim, {20})[0]
    stranger = only_in(sim, {27})[0]
    newcomer = only_in(sim, {18})[0]
    with_24 = sorted(
        m.userid for m in org.member_list() if inside & set(m.department) and inside & set(m.department) <= {24}
    )
    state = sim.state
    state.update_user(leaver, {"department": [27]})
    state.update_user(stranger, {"position": "Outside the scope"})
    state.update_user(newcomer, {"department": [20]})
    state.add_department({"id": 100, "name": "Elsewhere", "parentid": 27, "order": 1})
    state.update_department(24, {"parentid": 27})
    sim.flush_callbacks(timeout=30)

    output = run_dag("wecom_callback_deltas", env)
    logs = output.stdout + output.stderr
    delta = latest_run(target_engine)
    assert (delta["kind"], delta["status"]) == ("delta", "success"), logs[-3000:]
    assert (delta["users_left_scope"], delta["departments_left_scope"]) == (1 + len(with_24), 1)
    with target_engine.connect() as conn:
        events = {
            (r.entity_id, r.status, r.last_error)
            for r in conn.execute(text("SELECT entity_id, status, last_error FROM wecom_callback_events"))
        }
    set_aside = {entity: reason for entity, status, reason in events if status == "out_of_scope"}
    assert set(set_aside) == {stranger, "100"}, events
    assert "outside the company's department scope" in set_aside[stranger]
    assert {status for entity, status, _ in events if entity in {leaver, newcomer, "24"}} == {"applied"}
    assert flags(target_engine, "wecom_users", "userid", leaver) == (True, True)
    assert flags(target_engine, "wecom_departments", "department_id", 24) == (True, True)
    assert all(flags(target_engine, "wecom_users", "userid", u) == (True, True) for u in with_24)
    newcomer_name = org.profile(org.user(newcomer))["name"]
    assert scalar(target_engine, f"SELECT name FROM wecom_users WHERE userid = '{newcomer}'") == newcomer_name
    assert flags(target_engine, "wecom_users", "userid", newcomer) == (False, False)

    # What the callbacks left is exactly what a full sync of the scope finds.
    output = sync(env)
    again = latest_run(target_engine)
    assert again["status"] == "success", output[-3000:]
    changes = {
        k: v for k, v in again.items() if k.endswith(("_inserted", "_updated", "_deleted", "_revived", "_scope"))
    }
    assert set(changes.values()) == {0}, {k: v for k, v in changes.items() if v}
