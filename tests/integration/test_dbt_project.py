"""The dbt project (include/dbt) on a PostgreSQL the sync DAG loaded, against what the simulator holds.

Two full syncs through ``airflow dags test`` with changes in the simulator between them (a member
moves, another is deleted, a department is renamed) give the history; then ``dbt build`` (every
source and model test), ``dbt source freshness`` and the as-of model for the first snapshot's
instant, from dbt's own virtualenv (.venv-dbt, `make dbt-venv`).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.support.directory import latest_run, sync

pytestmark = pytest.mark.airflow

ROOT = Path(__file__).resolve().parents[2]
DBT = ROOT / ".venv-dbt" / "bin" / "dbt"
# The models build apart from the sources (public, where the DAG creates the tables).
MODELS = "analytics"


class Dbt:
    """dbt commands on the test's database, with their artifacts in the test's own folder."""

    def __init__(self, engine: Engine, tmp_path: Path) -> None:
        if not DBT.exists():
            pytest.fail(f"{DBT} is missing: `make dbt-venv` creates it (`make test` does)")
        url = engine.url
        self.target = tmp_path / "dbt-target"
        self.env = os.environ | {
            "PGHOST": url.host,
            "PGPORT": str(url.port),
            "PGUSER": url.username,
            "PGPASSWORD": url.password or "",
            "PGDATABASE": url.database,
            "DBT_TARGET_SCHEMA": MODELS,
            "DBT_PROJECT_DIR": str(ROOT / "include" / "dbt"),
            "DBT_PROFILES_DIR": str(ROOT / "include" / "dbt"),
            "DBT_TARGET_PATH": str(self.target),
            "DBT_LOG_PATH": str(tmp_path / "dbt-logs"),
        }

    def __call__(self, *args: str, succeeds: bool = True) -> str:
        done = subprocess.run([str(DBT), *args], env=self.env, capture_output=True, text=True, timeout=600, check=False)
        output = done.stdout + done.stderr
        assert (done.returncode == 0) is succeeds, f"dbt {' '.join(args)} exited {done.returncode}:\n{output[-6000:]}"
        return output


def rows(engine: Engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params)]


def snapshot_times(engine: Engine) -> list[datetime]:
    return [t for (t,) in rows(engine, "SELECT observed_at FROM wecom_sync_runs WHERE kind = 'full' ORDER BY 1")]


@pytest.mark.parametrize("target_engine", ["postgresql"], indirect=True)
def test_dbt_builds_the_org_chart_and_history_models_from_two_snapshots(
    sim, env, target_engine: Engine, tmp_path: Path
) -> None:
    dbt = Dbt(target_engine, tmp_path)
    org = sim.state.org
    output = sync(env)
    assert latest_run(target_engine)["status"] == "success", output[-3000:]

    mover, leaver = sorted(org.users)[10], sorted(org.users)[20]
    old_departments = set(org.user(mover).department)
    new_department = max(d for d in org.departments if d not in old_departments)
    renamed = min(old_departments)
    old_name = org.departments[renamed].name
    sim.state.update_user(mover, {"department": [new_department], "main_department": new_department})
    sim.state.delete_user(leaver)
    sim.state.update_department(renamed, {"name": "改名后的部门"})
    output = sync(env)
    assert latest_run(target_engine)["status"] == "success", output[-3000:]
    before, after = snapshot_times(target_engine)

    dbt("build")

    # The current org chart is what WeCom holds now: every membership, paths by name, leaders.
    memberships = {(m.userid, d) for m in org.users.values() for d in m.department}
    chart = rows(target_engine, f"SELECT userid, department_id FROM {MODELS}.wecom_org_chart")
    assert set(chart) == memberships and len(chart) == len(memberships)
    path, leaders = rows(
        target_engine,
        f"SELECT path_names, leader_userids FROM {MODELS}.wecom_org_departments WHERE department_id = :d",
        d=new_department,
    )[0]
    chain, at = [], new_department
    while at:
        chain.insert(0, org.departments[at].name)
        at = org.departments[at].parentid
    assert path == " / ".join(chain)
    expected = sorted(m.userid for m in org.departments[new_department].leaders if org.is_current(m))
    assert (leaders or "") == ",".join(expected)

    # Who holds each tag: its own current members and every member of its departments' subtrees.
    holders = rows(target_engine, f"SELECT tag_id, userid, holds_directly FROM {MODELS}.wecom_tag_holders")
    expected_holders = set()
    for tag in org.tags.values():
        inside = {d for party in tag.parties for d in org.subtree_ids(party)}
        expected_holders |= {(tag.id, m.userid) for m in tag.users if org.is_current(m)}
        expected_holders |= {(tag.id, m.userid) for m in org.users.values() if inside & set(m.department)}
    assert {(tag_id, userid) for tag_id, userid, _ in holders} == expected_holders and len(holders) == len(
        expected_holders
    )
    direct = {(tag.id, m.userid) for tag in org.tags.values() for m in tag.users if org.is_current(m)}
    assert {(tag_id, userid) for tag_id, userid, flag in holders if flag} == direct

    # As of the run's time (the default), the history gives the same memberships.
    now = rows(target_engine, f"SELECT userid, department_id FROM {MODELS}.wecom_members_as_of")
    assert set(now) == memberships

    # The department moves: the mover left the old departments and joined the new one at the second snapshot.
    moves = rows(
        target_engine,
        f"SELECT moved_at, move_type, department_id, recorded_by FROM {MODELS}.wecom_member_department_moves"
        " WHERE userid = :u ORDER BY moved_at, move_type DESC, department_id",
        u=mover,
    )
    assert moves == [
        *[(before, "joined", d, "snapshot") for d in sorted(old_departments)],
        *[(after, "left", d, None) for d in sorted(old_departments)],
        (after, "joined", new_department, "snapshot"),
    ]
    stints = f"SELECT left_at FROM {MODELS}.wecom_member_department_stints WHERE userid = :u"
    left = rows(target_engine, stints, u=leaver)
    assert left and all(t == after for (t,) in left)

    # As of the first snapshot: the mover in the old departments, the leaver still there, the old name.
    dbt("run", "--select", "wecom_members_as_of", "--vars", json.dumps({"wecom_as_of": before.isoformat()}))
    then = rows(
        target_engine, f"SELECT userid, department_id, department_name, as_of FROM {MODELS}.wecom_members_as_of"
    )
    assert {(u, d) for u, d, _, _ in then if u == mover} == {(mover, d) for d in old_departments}
    assert leaver in {u for u, *_ in then}
    assert {name for _, d, name, _ in then if d == renamed} == {old_name}
    assert {as_of for *_, as_of in then} == {before}

    # Freshness: every source passes; the directory tables are as fresh as the latest snapshot.
    dbt("source", "freshness")
    results = json.loads((dbt.target / "sources.json").read_text())["results"]
    assert {r["status"] for r in results} == {"pass"}
    loaded = {r["unique_id"].rsplit(".", 1)[1]: datetime.fromisoformat(r["max_loaded_at"]) for r in results}
    assert loaded["wecom_users"] == loaded["wecom_departments"] == after

    # An instant that is no ISO 8601 timestamp stops compilation with the var's name and value.
    wrong = json.dumps({"wecom_as_of": "last tuesday"})
    output = dbt("compile", "--select", "wecom_members_as_of", "--vars", wrong, succeeds=False)
    assert "var wecom_as_of: 'last tuesday' is not an ISO 8601 date or timestamp" in output


def test_dbt_virtualenv_holds_exactly_the_pinned_packages() -> None:
    """`make dbt-venv` installs requirements-dbt.txt under constraints-dbt.txt: nothing else, nothing unpinned."""
    python = DBT.parent / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: `make dbt-venv` creates it (`make test` does)")
    freeze = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    installed = {line.strip() for line in freeze.splitlines() if line.strip() and not line.startswith("pip==")}
    pinned = {
        line.split("#", 1)[0].strip()
        for line in (ROOT / "constraints-dbt.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    }
    assert installed == pinned
