"""Status-page fixtures: an empty, a healthy, a degraded and a failing company, as ``DatabaseStatus`` values.

``PYTHONPATH=plugins:. .venv/bin/python -m tests.wecom.status.fixtures page.html`` writes the page
they make, for a look in a browser; ``docs/images/status-page.png`` is that page in headless Chromium
(``chromium --headless --screenshot=... --window-size=1280,2000 file://.../page.html``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from wecom.status import CorpStatus, DatabaseStatus, EventQueueStatus, WaitingCompany, airflow_run_url
from wecom.status.page import render_page

NOW = datetime(2026, 12, 3, 6, 30, tzinfo=UTC)
FAILURE = "task extract failed: WeCom answered 60020 (not allow to access from your ip) for department/list"
DEAD_REASON = "unparseable callback: <Department> is missing (change_type update_party)"


def run_link(dag_id: str, run_id: str) -> str:
    return airflow_run_url("/", dag_id, run_id)


def full_run(
    days_ago: float, status: str, users: int | None, departments: int | None, minutes: float = 4, **extra: Any
) -> dict[str, Any]:
    """A ``wecom_sync_runs`` row of a daily full sync that finished ``days_ago`` before ``NOW``."""
    finished = NOW - timedelta(days=days_ago)
    started = finished - timedelta(minutes=minutes)
    dag_id = extra.pop("dag_id", "wecom_directory_sync")
    return {
        "dag_id": dag_id,
        "run_id": f"scheduled__{started:%Y-%m-%dT%H:%M:%S}",
        "kind": "full",
        "status": status,
        "started_at": started,
        "finished_at": finished,
        "observed_at": started if users is not None else None,
        "users_seen": users,
        "departments_seen": departments,
        "tags_seen": None if users is None else 12,
        "strategy": "list",
        "api_calls": 44,
        "throttled": 0,
        "message": "complete snapshot" if status == "success" else None,
        **{
            f"{e}_{c}": 0
            for e in ("departments", "users", "memberships", "tags")
            for c in ("inserted", "updated", "deleted")
        },
        **{f"{e}_revived": 0 for e in ("departments", "users", "tags")},
        **{f"tag_members_{c}": 0 for c in ("inserted", "deleted")},
        **extra,
    }


def _daily(days: range, dag_id: str, users: int, departments: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        full_run(
            d, "success", users + (30 - d) * 2, departments + (30 - d) // 10, minutes=3 + d % 4, dag_id=dag_id, **extra
        )
        for d in reversed(days)
    ]


OUT_OF_SCOPE_REASON = (
    "member hr_member in (7) outside the company's department scope (the subtrees of department(s) 2): "
    "recorded, not applied"
)


def dead_event(event_id: int, hours_ago: float, reason: str, entity: tuple[str | None, str | None]) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "change_type": "update_party" if entity[0] == "department" else "update_user",
        "entity_type": entity[0],
        "entity_id": entity[1],
        "status": "dead",
        "attempts": 5,
        "last_error": reason,
        "last_received_at": NOW - timedelta(hours=hours_ago),
        "run_id": None,
    }


def healthy() -> CorpStatus:
    history = _daily(range(1, 31), "wecom_directory_sync", 1180, 40, users_inserted=2)
    delta = {**full_run(0.01, "success", None, None, minutes=0.2), "kind": "delta", "run_id": "scheduled__delta"}
    return CorpStatus(
        "wwhealthy00000001",
        ("default",),
        last_full=history[-1],
        last_delta=delta,
        last_guarded=history[-1],
        last_snapshot=history[-1],
        history=history,
        events=EventQueueStatus({"applied": 412, "superseded": 9, "ignored": 3, "out_of_scope": 1}),
        out_of_scope_events=[
            {
                **dead_event(4711, 3, OUT_OF_SCOPE_REASON, ("user", "hr_member")),
                "status": "out_of_scope",
                "attempts": 0,
            }
        ],
    )


def degraded() -> CorpStatus:
    dag = "wecom_directory_sync__acme"
    history = _daily(range(4, 21), dag, 5200, 120)
    lost = {"withheld_fields": '{"member_contact": 5230}', "degraded": "member_contact"}
    history += [full_run(d, "success", 5236, 121, minutes=9, dag_id=dag, **lost) for d in (3, 2, 1)]
    return CorpStatus(
        "wwacme000000002",
        ("acme",),
        last_full=history[-1],
        last_guarded=history[-1],
        last_snapshot=history[-1],
        history=history,
        events=EventQueueStatus({"applied": 88, "dead": 2, "pending": 1}, NOW - timedelta(minutes=12)),
        dead_events=[
            dead_event(9031, 5, DEAD_REASON, ("department", None)),
            dead_event(9017, 30, "user/get answered 60111 (userid not found) five times", ("user", "zhangsan")),
        ],
    )


def failing() -> CorpStatus:
    dag = "wecom_directory_sync__globex"
    history = _daily(range(4, 15), dag, 800, 25)
    history.append(
        full_run(3, "guard_tripped", 310, 25, dag_id=dag, message="guard: 520 of 830 members would be deleted")
    )
    history += [full_run(d, "failed", None, None, minutes=1, dag_id=dag, message=FAILURE) for d in (2, 1)]
    return CorpStatus(
        "wwglobex00000003",
        ("globex",),
        last_full=history[-1],
        last_guarded=history[-3],
        last_snapshot=history[-4],
        history=history,
        events=EventQueueStatus({"applied": 40, "failed": 1}),
        failed_events=[
            {**dead_event(77, 2, "database is locked", ("user", "lisi")), "status": "failed", "attempts": 1}
        ],
    )


def databases() -> list[DatabaseStatus]:
    """Two target databases: healthy and degraded share one; failing has its own; one company not run yet."""
    return [
        DatabaseStatus(
            "wecom_target_db", [healthy(), degraded()], [WaitingCompany("newco", "wecom_directory_sync__newco")]
        ),
        DatabaseStatus("wecom_target_globex", [failing()]),
    ]


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(render_page(databases(), now=NOW, run_link=run_link), encoding="utf-8")
