"""``read_database`` against a real target database: what the status page gets for each company."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from wecom.companies import Company
from wecom.status import read_database, read_status
from wecom.store.loader import DirectoryLoader
from wecom.store.sql import db_time

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
ACME = "wecom_directory_sync__acme"
RUN = (
    "INSERT INTO wecom_sync_runs (dag_id, run_id, corp_id, kind, observed_at, started_at, finished_at, status, "
    "users_seen, users_inserted, message) VALUES (:dag_id, :run_id, :corp_id, :kind, :observed_at, :started_at, "
    ":finished_at, :status, :users_seen, :users_inserted, :message)"
)
EVENT = (
    "INSERT INTO wecom_callback_events (conn_id, corp_id, dedup_key, received_at, last_received_at, create_time, "
    "change_type, entity_type, entity_id, payload, status, attempts, last_error) VALUES (:conn_id, :corp_id, :key, "
    ":at, :at, :at, 'update_user', 'user', 'u1', '{}', :status, :attempts, :error)"
)


def _seed(engine: Engine) -> None:
    """The default company's corp: two good syncs, then a failure; acme's corp: one sync (shared database);
    a third corp known only from a dead callback that the ``wecom_globex`` connection received."""
    dialect = engine.dialect.name
    runs = [
        ("wecom_directory_sync", "r1", "wwdefault", "full", 3, "success", 100, None),
        ("wecom_directory_sync", "r2", "wwdefault", "full", 2, "success", 102, None),
        ("wecom_directory_sync", "r3", "wwdefault", "full", 1, "failed", None, "task extract failed: 60020"),
        ("wecom_callback_deltas", "d1", "wwdefault", "delta", 0.5, "success", None, None),
        (ACME, "a1", "wwacme", "full", 1, "success", 40, None),
    ]
    with engine.begin() as conn:
        for dag_id, run_id, corp_id, kind, days, status, users, message in runs:
            finished = NOW - timedelta(days=days)
            started = finished - timedelta(minutes=5)
            conn.execute(
                text(RUN),
                {
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "corp_id": corp_id,
                    "kind": kind,
                    "observed_at": db_time(started if users else None, dialect),
                    "started_at": db_time(started, dialect),
                    "finished_at": db_time(finished, dialect),
                    "status": status,
                    "users_seen": users,
                    "users_inserted": 2 if users else 0,
                    "message": message,
                },
            )
        events = [
            ("wecom_default", "wwdefault", "e1", 0.2, "pending", 0, None),
            ("wecom_default", "wwdefault", "e2", 3, "dead", 5, "unparseable callback: no UserID"),
            ("wecom_default", "wwdefault", "e3", 1, "failed", 1, "database is locked"),
            ("wecom_globex", "wwglobex", "e4", 2, "dead", 5, "user/get answered 60111 five times"),
            ("wecom_default", "wwdefault", "e5", 4, "out_of_scope", 0, "member u5 in (7) outside the scope"),
        ]
        for conn_id, corp_id, key, hours, status, attempts, error in events:
            at = db_time(NOW - timedelta(hours=hours), dialect)
            params = {"conn_id": conn_id, "corp_id": corp_id, "key": key, "at": at, "status": status}
            conn.execute(text(EVENT), {**params, "attempts": attempts, "error": error})


def test_an_empty_database_has_no_corps_and_every_company_waits(target_engine: Engine) -> None:
    assert read_status(target_engine) == []  # no tables yet
    DirectoryLoader(target_engine).ensure_schema()
    database = read_database("target", target_engine, [Company(), Company(name="acme", wecom_conn_id="wecom_acme")])
    assert database.corps == []
    assert [(c.name, c.dag_id) for c in database.waiting] == [
        ("default", "wecom_directory_sync"),
        ("acme", ACME),
    ]


def test_each_corp_is_read_with_its_company_name_runs_and_dead_letters(target_engine: Engine) -> None:
    DirectoryLoader(target_engine).ensure_schema()
    _seed(target_engine)
    companies = [
        Company(),
        Company(name="acme", wecom_conn_id="wecom_acme"),
        Company(name="globex", wecom_conn_id="wecom_globex"),
        Company(name="newco", wecom_conn_id="wecom_newco"),
    ]
    database = read_database("target", target_engine, companies)
    corps = {c.corp_id: c for c in database.corps}
    assert {corp_id: c.names for corp_id, c in corps.items()} == {
        "wwacme": ("acme",),
        "wwdefault": ("default",),
        "wwglobex": ("globex",),  # named through the connection that received its callback
    }
    assert [c.name for c in database.waiting] == ["newco"]

    default = corps["wwdefault"]
    assert default.last_full is not None and default.last_full["status"] == "failed"
    assert default.last_full["message"] == "task extract failed: 60020"
    assert default.last_snapshot is not None and default.last_snapshot["run_id"] == "r2"
    assert default.last_snapshot["finished_at"] == NOW - timedelta(days=2)  # aware, whatever the dialect stores
    assert default.last_delta is not None and default.last_delta["run_id"] == "d1"
    assert [r["run_id"] for r in default.history] == ["r1", "r2", "r3"]  # oldest first, full runs only
    assert default.events.counts == {"pending": 1, "dead": 1, "failed": 1, "out_of_scope": 1}
    assert default.events.lag_seconds(NOW) == 12 * 60
    assert [(e["entity_id"], e["last_error"]) for e in default.dead_events] == [
        ("u1", "unparseable callback: no UserID")
    ]
    assert [e["last_error"] for e in default.failed_events] == ["database is locked"]
    assert [e["last_error"] for e in default.out_of_scope_events] == ["member u5 in (7) outside the scope"]

    globex = corps["wwglobex"]
    assert globex.last_full is None and globex.history == []
    assert [e["last_error"] for e in globex.dead_events] == ["user/get answered 60111 five times"]
