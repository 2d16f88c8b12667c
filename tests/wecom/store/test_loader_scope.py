"""A department scope through extract, transform and load on SQLite and PostgreSQL: entities that leave the
scope are out_of_scope (not deleted, in the current tables and in history), a scope change is guarded like a
mass deletion and recorded on the run, and widening the scope revives what comes back."""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from wecom.api.client import WeComClient
from wecom.api.extract import extract_directory
from wecom.errors import MassDeletionError
from wecom.pipeline import check_staged, load_staged, run_record, scope_tops, snapshot_digest, transform_staged
from wecom.scope import Scope
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import LoadOptions
from wecom.store.run_records import RunRecord
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

CORP = "wwscope"
SECRET = "scope-secret-value"
SCOPE = Scope.from_option({"include": [10, 20], "exclude": [13]})  # seed 5: nine departments
RUNS = count(1)


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def sync(sim: RunningSimulator, loader: DirectoryLoader, folder: Path, scope: Scope, **options: Any) -> dict[str, Any]:
    run = folder / f"run{next(RUNS)}"
    with WeComClient(sim.base_url, CORP, SECRET) as client:
        manifest = extract_directory(
            client,
            run / "raw",
            strategy="list",
            max_workers=4,
            scope=scope,
            current=lambda: loader.current_entities(CORP),
        )
    transform_staged(run / "raw", run / "normalized", CORP, tops=scope_tops(manifest))
    check_staged(run / "normalized", scope_tops(manifest))
    record: RunRecord = run_record(
        manifest,
        dag_id="wecom_directory_sync",
        run_id=run.name,
        logical_date=None,
        started_at=None,
        snapshot_digest=snapshot_digest(manifest),
    )
    load_staged(loader, run / "normalized", manifest, record, LoadOptions(**options), raw_dir=run / "raw")
    return loader.runs.get("wecom_directory_sync", run.name)


def is_true(value: Any) -> bool:
    return value in (True, 1)


@pytest.fixture
def loader(target_engine: Engine) -> DirectoryLoader:
    loader = DirectoryLoader(target_engine)
    loader.ensure_schema()
    return loader


def test_leaving_and_reentering_the_scope(loader: DirectoryLoader, tmp_path: Path) -> None:
    engine = loader.engine
    org = generate_org(seed=5, members=300, departments=25)
    with running_simulator(org, corp_id=CORP, secret=SECRET) as sim:
        whole = sync(sim, loader, tmp_path, Scope())
        assert whole["status"] == "success" and whole["scope"] is None
        users = len(org.users)

        # Narrowing the scope removes most of the company: the guard stops it, with the scope change said.
        with pytest.raises(MassDeletionError, match="out of the scope"):
            sync(sim, loader, tmp_path, SCOPE)
        tripped = rows(engine, "SELECT status, message, scope FROM wecom_sync_runs ORDER BY finished_at DESC")[0]
        assert tripped[0] == "guard_tripped" and tripped[2] == SCOPE.text()
        assert 'the scope changed from the whole company to {"include":[10,20],"exclude":[13]}' in tripped[1]
        assert rows(engine, "SELECT COUNT(*) FROM wecom_users WHERE is_deleted") == [(0,)]

        narrowed = sync(sim, loader, tmp_path, SCOPE, allow_mass_delete=True)
        inside = set(SCOPE.resolve({d: x.parentid for d, x in org.departments.items()}).departments)
        members_inside = {m.userid for m in org.member_list() if inside & set(m.department)}
        assert narrowed["status"] == "success" and narrowed["scope"] == SCOPE.text()
        assert narrowed["departments_left_scope"] == len(org.departments) - len(inside)
        assert narrowed["users_left_scope"] == users - len(members_inside)
        assert (narrowed["departments_deleted"], narrowed["users_deleted"]) == (0, 0)
        live = rows(engine, "SELECT department_id FROM wecom_departments WHERE NOT is_deleted")
        assert {d for (d,) in live} == inside
        out = rows(engine, "SELECT out_of_scope, COUNT(*) FROM wecom_users WHERE is_deleted GROUP BY out_of_scope")
        assert [(is_true(flag), n) for flag, n in out] == [(True, users - len(members_inside))]
        assert rows(engine, "SELECT COUNT(*) FROM wecom_user_departments WHERE department_id NOT IN (10, 20)")[0][0]
        assert {d for (d,) in rows(engine, "SELECT DISTINCT department_id FROM wecom_user_departments")} <= inside
        assert rows(engine, "SELECT path, depth FROM wecom_departments WHERE department_id = 11") == [("/10/11/", 1)]
        ended = rows(
            engine, "SELECT ended_by, COUNT(*) FROM wecom_users_history WHERE valid_to IS NOT NULL GROUP BY ended_by"
        )
        assert ended == [("out_of_scope", users - len(members_inside))]
        assert rows(
            engine,
            "SELECT DISTINCT ended_by FROM wecom_user_departments_history WHERE valid_to IS NOT NULL",
        ) == [("out_of_scope",)]
        # Tags stay (they are company-wide) with only their members and departments in the scope; the
        # memberships and custom fields of the members who left the scope end out_of_scope.
        tag_members = {u for (u,) in rows(engine, "SELECT DISTINCT userid FROM wecom_tag_users")}
        assert tag_members and tag_members <= members_inside
        assert {d for (d,) in rows(engine, "SELECT DISTINCT department_id FROM wecom_tag_departments")} <= inside
        assert narrowed["tags_deleted"] == 0 and narrowed["tag_members_deleted"] > 0
        for history in ("wecom_tag_users_history", "wecom_user_attributes_history"):
            ends = f"SELECT DISTINCT ended_by FROM {history} WHERE valid_to IS NOT NULL"
            assert rows(engine, ends) == [("out_of_scope",)], history

        # Within the scope: one member leaves WeCom, another moves outside the scope.
        staying = sorted(m.userid for m in org.member_list() if set(m.department) == {12})
        gone, mover = staying[0], staying[1]
        sim.state.delete_user(gone)
        sim.state.update_user(mover, {"department": [5]})
        moved = sync(sim, loader, tmp_path, SCOPE)
        assert (moved["users_deleted"], moved["users_left_scope"]) == (1, 1), moved["message"]
        assert "scope changed" not in moved["message"]
        flags = dict(
            rows(engine, "SELECT userid, out_of_scope FROM wecom_users WHERE userid IN (:a, :b)", a=gone, b=mover)
        )
        assert (is_true(flags[gone]), is_true(flags[mover])) == (False, True)
        history = dict(
            rows(
                engine,
                "SELECT userid, ended_by FROM wecom_users_history WHERE userid IN (:a, :b) AND valid_to IS NOT NULL",
                a=gone,
                b=mover,
            )
        )
        assert history == {gone: "deleted", mover: "out_of_scope"}

        # Widening the scope again revives everything that left it, and paths start at the root again.
        wide = sync(sim, loader, tmp_path, Scope())
        assert wide["status"] == "success" and wide["scope"] is None
        assert wide["users_revived"] == users - len(members_inside) + 1, "everyone out of the scope, the mover too"
        assert wide["departments_revived"] == len(org.departments) - len(inside)
        assert "the scope changed from" in wide["message"]
        assert rows(engine, "SELECT COUNT(*) FROM wecom_users WHERE out_of_scope") == [(0,)]
        every_holder = {m.userid for tag in org.tags.values() for m in tag.users}
        assert {u for (u,) in rows(engine, "SELECT DISTINCT userid FROM wecom_tag_users")} == every_holder
        assert rows(engine, "SELECT COUNT(*) FROM wecom_users WHERE is_deleted") == [(1,)]
        path = "/1/2/3/4/5/6/7/8/9/10/11/"
        assert rows(engine, "SELECT path FROM wecom_departments WHERE department_id = 11") == [(path,)]
