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

from tests.support.airflow_runner import wecom_connection
from tests.support.directory import CORP, SECRET, sync

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
        sim.base_url, CORP, SECRET, max_retries=1, timeout=5, robot_webhook_key=ROBOT_KEY
    )
    output = sync(env)
    assert last_run(target_engine)["status"] == "success", output[-3000:]
    known = directory(target_engine)
    mobiles = sum(1 for row in known["users"] if dict(row)["mobile"])
    assert mobiles > len(known["users"]) // 2

    expected = [
        ("withheld", {"member_contact"}, "member_contact", 1),
        ("withheld", {"member_contact"}, "member_contact", 1),
        (
            "ids_only",
            {"member_contact", "member_details", "department_details"},
            "department_details,member_contact,member_details",
            2,
        ),
        ("full", set(), None, 2),
    ]
    for regime, withheld, degraded, alerts in expected:
        sim.set_regime(regime)
        output = sync(env)
        run = last_run(target_engine)
        assert run["status"] in ("success", "unchanged"), output[-3000:]
        assert set(json.loads(run["withheld_fields"] or "{}")) == withheld, regime
        assert run["degraded"] == degraded, regime
        assert directory(target_engine) == known, regime
        assert len(robot_messages(sim)) == alerts, regime
    contents = robot_messages(sim)
    assert "member_contact" in contents[0] and "contact-sync assistant's secret" in contents[0]
    assert "trusted IPs" in contents[1] and "member_details" in contents[1]
    assert SECRET not in "".join(contents)
