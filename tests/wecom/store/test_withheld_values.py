"""Absent is not empty, end to end on the full-sync path: the real simulator over HTTP, extract, transform
and load into SQLite and PostgreSQL, while WeCom's rights shrink and come back between syncs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from wecom.api.client import WeComClient
from wecom.api.extract import extract_directory
from wecom.pipeline import load_staged, run_record, snapshot_digest, transform_staged
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import LoadResult
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

CORP = "wwtestcorp"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=11, members=30, departments=6)) as running:
        yield running


def sync(sim: RunningSimulator, engine: Engine, tmp_path: Path, run: str, strategy: str = "auto") -> LoadResult:
    with WeComClient(sim.base_url, CORP, "s3cret-value") as client:
        manifest = extract_directory(client, tmp_path / run / "raw", strategy=strategy)
    transform_staged(tmp_path / run / "raw", tmp_path / run / "normalized", CORP)
    record = run_record(
        manifest,
        dag_id="wecom_directory_sync",
        run_id=run,
        logical_date=None,
        started_at=datetime.now(UTC),
        snapshot_digest=snapshot_digest(manifest),
    )
    return load_staged(DirectoryLoader(engine), tmp_path / run / "normalized", manifest, record)


def rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(map(tuple, conn.execute(text(sql))), key=repr)


USERS = "SELECT userid, name, mobile, email, gender, avatar_url, position, status, row_hash FROM wecom_users"
DEPARTMENTS = "SELECT department_id, name, sort_order, parent_id, row_hash FROM wecom_departments"
LINKS = (
    "SELECT 'm', userid, CAST(department_id AS TEXT), CAST(sort_order AS TEXT), is_leader, is_main"
    " FROM wecom_user_departments UNION ALL SELECT 'l', userid, CAST(department_id AS TEXT), '', FALSE, FALSE"
    " FROM wecom_department_leaders UNION ALL SELECT 'd', userid, leader_userid, '', FALSE, FALSE"
    " FROM wecom_user_direct_leaders UNION ALL SELECT 't', userid, CAST(tag_id AS TEXT), '', FALSE, FALSE"
    " FROM wecom_tag_users UNION ALL SELECT 'p', '', CAST(tag_id AS TEXT), CAST(department_id AS TEXT), FALSE, FALSE"
    " FROM wecom_tag_departments UNION ALL SELECT 'a', userid, attr_name, text_value, FALSE, FALSE"
    " FROM wecom_user_attributes UNION ALL SELECT 'n', tag_name, CAST(tag_id AS TEXT), '', is_deleted, FALSE"
    " FROM wecom_tags"
)
HISTORY = (
    "SELECT (SELECT COUNT(*) FROM wecom_users_history) + (SELECT COUNT(*) FROM wecom_departments_history)"
    " + (SELECT COUNT(*) FROM wecom_user_departments_history) + (SELECT COUNT(*) FROM wecom_tags_history)"
    " + (SELECT COUNT(*) FROM wecom_tag_users_history) + (SELECT COUNT(*) FROM wecom_tag_departments_history)"
    " + (SELECT COUNT(*) FROM wecom_user_attributes_history)"
)


def test_shrinking_rights_keep_every_known_value_and_write_no_version(
    sim: RunningSimulator, target_engine: Engine, tmp_path: Path
) -> None:
    DirectoryLoader(target_engine).ensure_schema()
    first = sync(sim, target_engine, tmp_path, "r1")
    assert first.status == "success"
    users, departments, links = rows(target_engine, USERS), rows(target_engine, DEPARTMENTS), rows(target_engine, LINKS)
    history = rows(target_engine, HISTORY)
    assert sum(1 for u in users if u[2]) >= 20, "the simulator gives most members a mobile"

    contact, ids_only = "member_contact", "department_details,member_contact,member_details,tags"
    for run, regime, degraded, newly in (
        ("r2", "withheld", contact, [contact]),
        ("r3", "withheld", contact, []),
        ("r4", "ids_only", ids_only, ["department_details", "member_details", "tags"]),
        ("r5", "full", None, []),
    ):
        sim.set_regime(regime)
        result = sync(sim, target_engine, tmp_path, run)
        assert result.status == "success", regime  # load_staged loads: "unchanged" is record_if_unchanged's
        assert result.rows_written == 0, f"{regime}: {result.as_dict()}"
        assert rows(target_engine, USERS) == users, regime
        assert rows(target_engine, DEPARTMENTS) == departments, regime
        assert rows(target_engine, LINKS) == links, regime
        assert rows(target_engine, HISTORY) == history, regime
        (row,) = rows(target_engine, f"SELECT degraded, message FROM wecom_sync_runs WHERE run_id = '{run}'")
        assert row[0] == degraded, regime
        assert result.newly_degraded == newly, regime
        assert ("trusted IPs" in row[1]) == (regime == "ids_only"), row[1]
        assert ("tag/list answered errcode 48009" in row[1]) == (regime == "ids_only"), row[1]


def test_a_present_empty_value_still_clears_and_a_real_change_still_versions(
    sim: RunningSimulator, target_engine: Engine, tmp_path: Path
) -> None:
    DirectoryLoader(target_engine).ensure_schema()
    sync(sim, target_engine, tmp_path, "r1")
    org = sim.state.org
    member = next(m for m in org.users.values() if org.user_view(m)["mobile"])
    userid, mobile, position = member.userid, org.user_view(member)["mobile"], org.user_view(member)["position"]
    sim.set_regime("withheld")
    sim.state.update_user(userid, {"position": "Chief Withheld Officer"})
    result = sync(sim, target_engine, tmp_path, "r2")
    assert result.plans["wecom_users"].updated == 1
    (kept,) = rows(target_engine, f"SELECT mobile, position FROM wecom_users WHERE userid = '{userid}'")
    assert kept == (mobile, "Chief Withheld Officer")

    sim.set_regime("full")
    sim.state.update_user(userid, {"mobile": ""})
    sync(sim, target_engine, tmp_path, "r3")
    (cleared,) = rows(target_engine, f"SELECT mobile FROM wecom_users WHERE userid = '{userid}'")
    assert cleared == (None,)
    with target_engine.connect() as conn:
        sql = f"SELECT mobile, position FROM wecom_users_history WHERE userid = '{userid}' ORDER BY valid_from"
        versions = [tuple(row) for row in conn.execute(text(sql))]
    assert versions == [
        (mobile, position),
        (mobile, "Chief Withheld Officer"),
        (None, "Chief Withheld Officer"),
    ]
