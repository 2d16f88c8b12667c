"""The full sync as a data product, through ``airflow dags test``: the asset events and OpenLineage
events of a first load and of a run that changed one member, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine

from tests.support.data_platform import asset_events, completed, lineage_env, location_of
from tests.support.directory import CORP, DAG_ID, latest_run, sync
from wecom.tables import directory_tables

pytestmark = pytest.mark.airflow


def test_a_sync_emits_an_event_per_changed_table_and_reports_its_lineage(
    sim, env, target_engine: Engine, tmp_path: Path
) -> None:
    lineage = tmp_path / "openlineage.jsonl"
    env = env | lineage_env(lineage)
    location = location_of(target_engine)
    org = sim.state.org

    output = sync(env)
    first = latest_run(target_engine)
    assert first["status"] == "success", output[-3000:]
    events = asset_events(first["run_id"])
    # every table the first load filled, each named by its URI; the counts are that table's own
    assert set(events) == {location.asset_uri(t) for t in directory_tables()}
    users = events[location.asset_uri("wecom_users")]
    assert users == {
        "company": "default",
        "corp_id": CORP,
        "dag_id": DAG_ID,
        "run_id": first["run_id"],
        "observed_at": users["observed_at"],
        "degraded": [],
        "table": "wecom_users",
        "inserted": len(org.users),
        "updated": 0,
        "deleted": 0,
        "revived": 0,
    }
    assert users["observed_at"][:19] == str(first["observed_at"]).replace(" ", "T")[:19]
    assert events[location.asset_uri("wecom_departments")]["inserted"] == len(org.departments)

    (extract,) = completed(lineage, DAG_ID, "extract")
    wecom = {(d["namespace"], d["name"]): d["inputFacets"]["inputStatistics"]["rowCount"] for d in extract["inputs"]}
    assert wecom == {
        (f"wecom://{CORP}", "department"): len(org.departments),
        (f"wecom://{CORP}", "user"): len(org.users),
    }
    (load,) = completed(lineage, DAG_ID, "load")
    assert {(d["namespace"], d["name"]) for d in load["inputs"]} == set(wecom)
    written = {d["name"]: d for d in load["outputs"]}
    assert {d["namespace"] for d in load["outputs"]} == {location.namespace}
    assert set(written) == {location.lineage_name(t) for t in directory_tables()}
    for table, columns in directory_tables().items():
        fields = written[location.lineage_name(table)]["facets"]["schema"]["fields"]
        assert [f["name"] for f in fields] == list(columns), table
    rows = {name: d["outputFacets"]["outputStatistics"]["rowCount"] for name, d in written.items()}
    assert rows[location.lineage_name("wecom_users")] == len(org.users)

    userid = sorted(org.users)[3]
    edit = requests.patch(f"{sim.base_url}/_sim/users/{userid}", json={"position": "Asset check"}, timeout=5)
    assert edit.json()["changes"], edit.text
    output = sync(env)
    second = latest_run(target_engine)
    assert second["status"] == "success", output[-3000:]
    events = asset_events(second["run_id"])
    # one member's position: its table and that table's history, nothing else
    assert set(events) == {location.asset_uri("wecom_users"), location.asset_uri("wecom_users_history")}
    assert {e["updated"] for e in events.values()} == {1}
    assert {(e["inserted"], e["deleted"], e["revived"]) for e in events.values()} == {(0, 0, 0)}
    load = completed(lineage, DAG_ID, "load")[-1]
    rows = {d["name"]: d["outputFacets"]["outputStatistics"]["rowCount"] for d in load["outputs"]}
    assert rows[location.lineage_name("wecom_users")] == 1
    assert rows[location.lineage_name("wecom_departments")] == 0
