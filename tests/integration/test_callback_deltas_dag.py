"""Callbacks end to end: simulator edits -> encrypted callbacks -> receiver -> events table -> the delta DAG.

The simulator posts real signed and encrypted events (with redeliveries, shuffled) to the
receiver app served by uvicorn on a free port; ``airflow dags test wecom_callback_deltas``
applies them. With ids-only events (completed by fetching), a forced full sync afterwards must
find the directory exactly as the callbacks left it; full-form events never carry open_userid or
a membership's order, so there only the applied changes are checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.support.airflow_runner import run_dag, target_connection, wecom_connection
from tests.support.data_platform import asset_events, completed, lineage_env, location_of
from tests.support.receiver import serving_receiver
from wecom.datasets import EVENTS_TABLE
from wecom.tables import directory_tables
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

pytestmark = pytest.mark.airflow

CORP = "wwcallbacks"
SECRET = "callbacks-secret-value"
TOKEN = "CallbackToken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CONN_ID = "wecom_default"


@pytest.fixture
def receiver_url(target_engine: Engine) -> Iterator[str]:
    """The receiver app, served in this process, storing into the test's target database."""
    with serving_receiver(target_engine.url, corp_id=CORP, token=TOKEN, aes_key=AES_KEY, conn_id=CONN_ID) as url:
        yield url


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=11, members=60, departments=10), corp_id=CORP, secret=SECRET) as sim:
        yield sim


def env_for(sim: RunningSimulator, target_engine: Engine, tmp_path: Path) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_WECOM_DEFAULT": wecom_connection(
            sim.base_url, CORP, SECRET, max_retries=1, callback_token=TOKEN, callback_aes_secret=AES_KEY
        ),
        "AIRFLOW_CONN_WECOM_TARGET_DB": target_connection(target_engine.url.render_as_string(hide_password=False)),
        "AIRFLOW__WECOM__STAGING_URI": f"file://{tmp_path}/staging",
    } | lineage_env(tmp_path / "openlineage.jsonl")


def query(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def latest_run(engine: Engine, kind: str) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text("SELECT * FROM wecom_sync_runs WHERE kind = :kind ORDER BY finished_at DESC"), {"kind": kind}
            )
            .mappings()
            .first()
        )


def edit_company(sim: RunningSimulator) -> dict[str, str]:
    """A bit of everything WeCom calls back about; returns the userids involved."""
    state = sim.state
    members = sorted(state.org.users)
    moved, renamed, deleted, edited = members[1], members[2], members[3], members[4]
    state.add_department({"id": 100, "name": "Callbacks", "parentid": 1, "order": 7})
    state.add_department({"id": 101, "name": "Short-lived", "parentid": 100, "order": 1})
    state.delete_department(101)
    state.add_user({"userid": "cb_new", "name": "New Hire", "department": [100], "position": "Intern"})
    number = {"type": 0, "name": "工号", "text": {"value": "CB-1"}}
    state.update_user(edited, {"position": "Callback Tester", "alias": "cbt", "extattr": {"attrs": [number]}})
    state.update_user(moved, {"department": [100]})
    tag = next(iter(state.org.tags.values()))
    leaving = next(m.userid for m in tag.users if m.userid not in (renamed, deleted, moved))
    state.add_tag_members(tag.id, {"userlist": [renamed, "cb_new"], "partylist": [100]})  # named before the rename
    state.remove_tag_members(tag.id, {"userlist": [leaving]})
    state.update_user(renamed, {"new_userid": f"{renamed}_v2"})
    state.delete_user(deleted)
    leaf = max(d for d in state.org.departments if d < 100 and not state.org.children.get(d))
    state.update_department(leaf, {"parentid": 100})
    return {
        "moved": moved,
        "renamed": renamed,
        "deleted": deleted,
        "edited": edited,
        "leaf": str(leaf),
        "tag": str(tag.id),
    }


# Each event form on one dialect keeps the DAG runs few.
@pytest.mark.parametrize(
    ("target_engine", "ids_only"),
    [("sqlite", False), ("postgresql", True)],
    ids=["sqlite-full_events", "postgresql-ids_only"],
    indirect=["target_engine"],
)
def test_callbacks_flow_into_the_directory(
    ids_only: bool, sim: RunningSimulator, receiver_url: str, target_engine: Engine, tmp_path: Path, airflow_metadata
) -> None:
    env = env_for(sim, target_engine, tmp_path)
    # A lineage backend that does not answer costs the run nothing: it succeeds, its asset events emitted.
    unreachable = {"type": "http", "url": "http://127.0.0.1:9", "timeout": 1}
    output = run_dag("wecom_directory_sync", env | {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(unreachable)})
    full = latest_run(target_engine, "full")
    assert full["status"] == "success", (output.stdout + output.stderr)[-3000:]
    assert location_of(target_engine).asset_uri("wecom_users") in asset_events(full["run_id"])

    sim.configure_callbacks(receiver_url, TOKEN, AES_KEY, ids_only=ids_only, duplicates=1, shuffle=True)
    who = edit_company(sim)
    sim.flush_callbacks(timeout=30)
    stored = dict(query(target_engine, "SELECT status, COUNT(*) FROM wecom_callback_events GROUP BY status"))
    assert stored.get("pending", 0) >= 8

    output = run_dag("wecom_callback_deltas", env)
    logs = output.stdout + output.stderr
    delta = latest_run(target_engine, "delta")
    assert delta["status"] == "success", logs[-3000:]
    assert SECRET not in logs and AES_KEY not in logs
    statuses = dict(query(target_engine, "SELECT status, COUNT(*) FROM wecom_callback_events GROUP BY status"))
    assert set(statuses) <= {"applied", "superseded"}, statuses

    org = sim.state.org
    alive = query(target_engine, "SELECT userid FROM wecom_users WHERE NOT is_deleted")
    assert sorted(u for (u,) in alive) == sorted(m.userid for m in org.users.values())
    assert query(target_engine, f"SELECT is_deleted FROM wecom_users WHERE userid = '{who['deleted']}'") in (
        [(True,)],
        [(1,)],
    )
    assert query(
        target_engine, f"SELECT department_id FROM wecom_user_departments WHERE userid = '{who['moved']}'"
    ) == [(100,)]
    assert query(target_engine, f"SELECT path FROM wecom_departments WHERE department_id = {who['leaf']}") == [
        (f"/1/100/{who['leaf']}/",)
    ]
    assert query(target_engine, "SELECT is_deleted FROM wecom_departments WHERE department_id = 101") in (
        [(True,)],
        [(1,)],
    )
    assert query(
        target_engine,
        f"SELECT COUNT(*) FROM wecom_users_history WHERE userid = '{who['edited']}' AND change_source = 'callback'",
    ) == [(1,)]
    tag = org.tags[int(who["tag"])]
    held = query(target_engine, f"SELECT userid FROM wecom_tag_users WHERE tag_id = {tag.id}")
    assert sorted(u for (u,) in held) == sorted(m.userid for m in tag.users if org.is_current(m)), (
        "update_tag applied, with the renamed member under its new userid"
    )
    assert (100,) in query(target_engine, f"SELECT department_id FROM wecom_tag_departments WHERE tag_id = {tag.id}")
    number = f"SELECT text_value FROM wecom_user_attributes WHERE userid = '{who['edited']}' AND attr_name = '工号'"
    assert query(target_engine, number) == [("CB-1",)]
    assert delta["tag_members_inserted"] >= 3 and delta["tag_members_deleted"] >= 1

    # One asset event per table the apply changed, however many events it applied; the tables it did not
    # touch (no direct leader changed) get none. Its lineage reads the events table.
    location = location_of(target_engine)
    events = asset_events(delta["run_id"])
    changed = {"wecom_users", "wecom_departments", "wecom_user_departments", "wecom_department_closure"}
    expected = changed | {f"{t}_history" for t in changed if f"{t}_history" in directory_tables()}
    assert (
        {location.asset_uri(t) for t in expected} <= set(events) <= {location.asset_uri(t) for t in directory_tables()}
    )
    users = events[location.asset_uri("wecom_users")]
    assert (users["run_id"], users["inserted"], users["deleted"]) == (delta["run_id"], 1, 1)
    (apply,) = completed(tmp_path / "openlineage.jsonl", "wecom_callback_deltas", "apply_callbacks")
    read = {(d["namespace"], d["name"]): d["inputFacets"] for d in apply["inputs"]}
    # ids-only events are completed from WeCom: its members are read too, with no record count
    wecom = {name: facets for (namespace, name), facets in read.items() if namespace == f"wecom://{CORP}"}
    assert all(facets == {} for facets in wecom.values()) and ("user" in wecom) == ids_only, wecom
    assert (location.namespace, location.lineage_name(EVENTS_TABLE)) in read
    assert {d["name"] for d in apply["outputs"]} == {location.lineage_name(t) for t in directory_tables()}

    if ids_only:
        # Fetched entities are exactly what a full sync reads: a forced one finds nothing to change.
        output = run_dag("wecom_directory_sync", env, conf={"force": True})
        full = latest_run(target_engine, "full")
        assert full["status"] == "success", (output.stdout + output.stderr)[-3000:]
        changes = {k: v for k, v in full.items() if k.endswith(("_inserted", "_updated", "_deleted", "_revived"))}
        assert set(changes.values()) == {0}, changes
        assert asset_events(full["run_id"]) == {}  # a sync that changed nothing emits no asset event
