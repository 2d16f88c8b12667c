"""WeCom's permission regimes through the real full-sync DAG (``airflow dags test``), on SQLite and PostgreSQL.

A company synced with full rights is re-synced as a new app's secret (contact fields withheld), then from a
newly trusted IP (id lists only), then with full rights again. Nothing it knew may be lost or re-versioned,
each run says what it could not see, and the group robot hears of each loss once.
"""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.support.airflow_runner import run_dag, wecom_connection
from tests.support.directory import CORP, SECRET, sync
from tests.support.receiver import serving_receiver

pytestmark = pytest.mark.airflow

ROBOT_KEY = "regime-robot-key"
# Every stored column that WeCom's answers fill (timestamps aside), and every history row.
DIRECTORY = {
    "users": "SELECT * FROM wecom_users",
    "departments": "SELECT * FROM wecom_departments",
    "memberships": "SELECT * FROM wecom_user_departments",
    "department_leaders": "SELECT * FROM wecom_department_leaders",
    "direct_leaders": "SELECT * FROM wecom_user_direct_leaders",
    "users_history": "SELECT * FROM wecom_users_history",
    "departments_history": "SELECT * FROM wecom_departments_history",
    "memberships_history": "SELECT * FROM wecom_user_departments_history",
}
VOLATILE = {"updated_at", "last_seen_at", "observed_at"}


def directory(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            name: sorted(
                (
                    tuple((k, v) for k, v in row.items() if k not in VOLATILE)
                    for row in conn.execute(text(sql)).mappings()
                ),
                key=repr,
            )
            for name, sql in DIRECTORY.items()
        }


def last_run(engine: Engine) -> dict:
    with engine.connect() as conn:
        sql = "SELECT * FROM wecom_sync_runs WHERE kind = 'full' ORDER BY finished_at DESC"
        return dict(conn.execute(text(sql)).mappings().first())


def robot_messages(sim) -> list[str]:
    return [m["content"] for m in httpx.get(f"{sim.base_url}/_sim/robot/messages").json()["messages"]]


def test_rights_shrink_and_return_without_losing_or_reversioning_anything(sim, env, target_engine: Engine) -> None:
    env["AIRFLOW_CONN_WECOM_DEFAULT"] = wecom_connection(
        sim.base_url,
        CORP,
        SECRET,
        max_retries=1,
        robot_webhook_url=f"{sim.base_url}/cgi-bin/webhook/send?key={ROBOT_KEY}",
    )
    output = sync(env)
    assert last_run(target_engine)["status"] == "success", output[-3000:]
    known = directory(target_engine)
    mobiles = sum(1 for row in known["users"] if dict(row)["mobile"])
    assert mobiles > len(known["users"]) // 2

    expected = [
        ("withheld", {"member_contact"}, "member_contact", 1),
        ("withheld", {"member_contact"}, "member_contact", 1),
        (  # an IP added after 2022-08-15 reads id lists only: the tag endpoints answer 48009 too
            "ids_only",
            {"member_contact", "member_details", "department_details", "tags"},
            "department_details,member_contact,member_details,tags",
            2,
        ),
        ("full", set(), None, 2),
    ]
    for regime, withheld, degraded, alerts in expected:
        sim.set_regime(regime)
        output = sync(env)
        run = last_run(target_engine)
        assert run["status"] == "success", output[-3000:]  # sync() forces: never "unchanged"
        assert set(json.loads(run["withheld_fields"] or "{}")) == withheld, regime
        assert run["degraded"] == degraded, regime
        assert directory(target_engine) == known, regime
        assert len(robot_messages(sim)) == alerts, regime
    contents = robot_messages(sim)
    assert "member_contact" in contents[0] and "contact-sync assistant's secret" in contents[0]
    assert "trusted IPs" in contents[1] and "member_details" in contents[1]
    assert SECRET not in "".join(contents)


TOKEN = "RegimeToken42"
AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj"


def query(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(map(tuple, conn.execute(text(sql))), key=repr)


def test_ids_only_callbacks_whose_fetches_are_refused_apply_and_lose_nothing(
    sim, env, target_engine: Engine, tmp_path
) -> None:
    """Issue 11's acceptance run: full -> withheld -> id lists only -> ids-only callbacks, every fetch 48009."""
    env["AIRFLOW_CONN_WECOM_DEFAULT"] = wecom_connection(
        sim.base_url, CORP, SECRET, max_retries=1, callback_token=TOKEN, callback_aes_secret=AES_KEY
    )
    for regime in ("full", "withheld", "ids_only"):
        sim.set_regime(regime)
        output = sync(env)
        assert last_run(target_engine)["status"] == "success", output[-3000:]
    known = directory(target_engine)
    people = {u: (n, m) for u, n, m in query(target_engine, "SELECT userid, name, mobile FROM wecom_users")}
    history = query(target_engine, "SELECT userid, valid_from, row_hash FROM wecom_users_history")

    org = sim.state.org
    members = sorted(org.users)
    moved, renamed, departed = members[3], members[4], members[5]
    sim.set_regime("ids_only", callback_form="ids_only")
    with serving_receiver(target_engine.url, corp_id=CORP, token=TOKEN, aes_key=AES_KEY) as url:
        sim.configure_callbacks(url, TOKEN, AES_KEY)
        sim.state.add_department({"id": 900, "name": "Regime Lab", "parentid": 1, "order": 3})
        sim.state.add_user({"userid": "newcomer", "name": "New Hire", "department": [900], "mobile": "13900000000"})
        sim.state.update_user(moved, {"department": [900]})
        sim.state.update_user(renamed, {"new_userid": f"{renamed}_v2"})
        sim.state.delete_user(departed)
        sim.flush_callbacks(timeout=30)
    output = run_dag("wecom_callback_deltas", env)
    logs = output.stdout + output.stderr

    statuses = dict(query(target_engine, "SELECT status, COUNT(*) FROM wecom_callback_events GROUP BY status"))
    assert set(statuses) == {"applied"}, (statuses, logs[-3000:])
    assert "48009" in logs, "the refused fetches are named in the log"
    after = {u: (n, m) for u, n, m in query(target_engine, "SELECT userid, name, mobile FROM wecom_users")}
    for userid, (name, mobile) in people.items():
        assert after[userid if userid != renamed else f"{renamed}_v2"] == (name, mobile), userid
    assert query(target_engine, f"SELECT department_id FROM wecom_user_departments WHERE userid = '{moved}'") == [
        (900,)
    ]
    assert query(target_engine, "SELECT department_id FROM wecom_user_departments WHERE userid = 'newcomer'") == [
        (900,)
    ]
    assert query(target_engine, "SELECT parent_id, path FROM wecom_departments WHERE department_id = 900") == [
        (1, "/1/900/")
    ]
    assert query(target_engine, f"SELECT is_deleted FROM wecom_users WHERE userid = '{departed}'") in (
        [(True,)],
        [(1,)],
    )
    alive = {u for (u,) in query(target_engine, "SELECT userid FROM wecom_users WHERE NOT is_deleted")}
    assert alive == {m.userid for m in org.users.values()}
    kept = query(target_engine, "SELECT userid, valid_from, row_hash FROM wecom_users_history")
    moved_history = {(f"{renamed}_v2", t, h) if u == renamed else (u, t, h) for u, t, h in history}
    assert moved_history <= set(kept), "every history row it knew is still there (the renamed one's under its new id)"
    memberships_before = {r for r in known["memberships"] if dict(r)["userid"] not in (moved, renamed, departed)}
    assert memberships_before <= set(directory(target_engine)["memberships"])
