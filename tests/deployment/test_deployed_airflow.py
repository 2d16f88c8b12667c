"""A deployed Airflow, as `make airflow` starts it, checked through the REST API and the browser.

One Airflow per executor (starting one costs most of the time), and every check against it, in
the order a new user meets them: DAGs parsed, the scheduled sync, a dry run, a backfill, a callback
through the API server's receiver, downstream DAGs scheduled on the members' asset as `Asset(uri)`,
`Asset.ref(uri=...)` and `Asset.ref(name=...)` (each run after the sync and the callback that changed
members, not after the runs that changed nothing), the UI pages, what stays masked. Each check is a
subtest, so one failure (e.g. a product bug another check does not depend on) leaves the others reporting.
Both run their metadata on PostgreSQL, as docker-compose.yaml does: the scheduler, dag-processor,
triggerer, API server and CLI write it at once, which SQLite serializes with a lock that a loaded
machine holds past its timeout (`database is locked` on `airflow backfill create`). CeleryExecutor
adds Redis and two workers sharing the staging folder, as docker-compose.yaml's celery profile. The
corp secret starts with `-`, as one generated secret in 64 does. Artifacts (component logs, task logs,
screenshots) stay in var/deployment/<time>-<pid>-<executor>/ after the run.

A new check is a subtest in the order a user meets it, against the same stack: one stack per
executor is what keeps this suite affordable.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from scripts.airflow_local import ADMIN, ROOT, AirflowLocal, Options, Secrets, free_port
from tests.deployment.browser import connection_test_toast, logged_in_page, open_connection_form
from tests.deployment.rest import FINISHED, Rest
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.deployment, pytest.mark.airflow]

SYNC, DELTAS = "wecom_directory_sync", "wecom_callback_deltas"
# Downstream DAGs as docs/data-platform.md gives them, on the members' asset of the stack's target database,
# in the three forms a consumer writes it: Airflow identifies an asset by name and URI, so each must match.
# Only the Asset(uri) one reads its events back: Airflow 3.3's scheduler links no events to a run it queued
# through an Asset.ref (it collects them by the DAG's asset and alias references only: "consumed 0 asset
# events" in its log), so each run is tied to its event by when it was queued instead.
READER = "wecom_users_changed"
CONSUMERS = {
    READER: 'Asset("{uri}")',
    "wecom_users_changed_ref_uri": 'Asset.ref(uri="{uri}")',
    "wecom_users_changed_ref_name": 'Asset.ref(name="{uri}")',
}
CONSUMER_DAG = """
from datetime import datetime

from airflow.sdk import Asset, dag, task

USERS = {asset}


@dag(dag_id="{dag_id}", schedule=[USERS], start_date=datetime(2026, 1, 1), catchup=False)
def consumer():
    @task
    def what_changed(triggering_asset_events=None) -> list[dict]:
        return [dict(event.extra) for event in triggering_asset_events[USERS]]

    what_changed()


consumer()
"""
ARTIFACTS = ROOT / "var" / "deployment"
# Deadlines, not waits (each poll ends as soon as it holds): a loaded 2-core machine runs a DAG in minutes.
STACK_DEADLINE_S = 600
POLL_S = 1


@pytest.fixture(params=["local", "celery"])
def deployed(request: pytest.FixtureRequest) -> Iterator[AirflowLocal]:
    executor = request.param
    if executor == "celery" and shutil.which("redis-server") is None:
        pytest.fail("the CeleryExecutor run needs Debian's redis-server: apt-get install redis-server")
    # a home of its own: two test runs at once (two people, or CI and a developer) never share one
    home = ARTIFACTS / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}-{executor}"
    home.mkdir(parents=True)
    kept = Secrets.load_or_create(home / "launcher-secrets.json")
    kept.corp_secret = f"-{kept.corp_secret}"  # must reach the simulator's command line as a value
    (home / "launcher-secrets.json").write_text(json.dumps(asdict(kept)))
    options = Options(
        home=home,
        executor=executor,
        postgres=True,
        port=free_port(),
        members=300,
        departments=30,
        celery_concurrency=2,
        refresh_interval_s=600,  # no DAG file changes during the test: list the folder once
        extra_dags=home / "downstream-dags",
    )
    stack = AirflowLocal(options)
    options.extra_dags.mkdir(parents=True)
    for dag_id, asset in CONSUMERS.items():
        consumer = CONSUMER_DAG.format(asset=asset.format(uri=users_asset(stack)), dag_id=dag_id)
        (options.extra_dags / f"{dag_id}.py").write_text(consumer)
    with stack:
        yield stack


def users_asset(stack: AirflowLocal) -> str:
    """The members' asset URI, written as docs/data-platform.md says: from the target connection's file."""
    return f"sqlite://localhost{stack.target_db}/wecom_users"


def sync_rows(stack: AirflowLocal) -> dict[str, str]:
    """``wecom_sync_runs``: run id -> status, from the target database the connection names."""
    with sqlite3.connect(stack.target_db) as db:
        return dict(db.execute("SELECT run_id, status FROM wecom_sync_runs"))


def members(stack: AirflowLocal) -> dict[str, str]:
    """``wecom_users``: userid -> position."""
    with sqlite3.connect(stack.target_db) as db:
        return dict(db.execute("SELECT userid, position FROM wecom_users ORDER BY userid"))


def callback_events(stack: AirflowLocal) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(stack.target_db) as db:
        return db.execute("SELECT change_type, status, last_error FROM wecom_callback_events").fetchall()


def component_logs(stack: AirflowLocal) -> dict[str, str]:
    return {path.name: path.read_text(errors="replace") for path in stack.logs.glob("*.log")}


def test_deployed_airflow(deployed: AirflowLocal, subtests: pytest.Subtests) -> None:
    stack = deployed
    rest = Rest.login(stack.base_url, ADMIN, stack.secrets.admin_password)
    sim = httpx.Client(base_url=stack.simulator_url, timeout=STACK_DEADLINE_S)

    with subtests.test("anonymous requests get 401"):
        for path in ("/api/v2/dags", "/api/v2/connections/wecom_default", "/wecom/status/"):
            assert httpx.get(stack.base_url + path, timeout=30).status_code == 401, path

    with subtests.test("both DAGs parsed, no DAG or plugin import error, the plugin registered once"):
        dags = lambda: {d["dag_id"] for d in rest.call("GET", "/dags")["dags"]}  # noqa: E731
        wait_for(lambda: {SYNC, DELTAS, *CONSUMERS} <= dags(), STACK_DEADLINE_S, "DAGs", interval_s=POLL_S)
        assert rest.call("GET", "/importErrors")["import_errors"] == []
        assert rest.call("GET", "/plugins/importErrors")["import_errors"] == []
        assert "wecom" in {p["name"] for p in rest.call("GET", "/plugins")["plugins"]}
        complaints = ("already registered", "Failed to import plugin", "Failed to load plugin")
        logged = [(name, c) for name, text in component_logs(stack).items() for c in complaints if c in text]
        assert not logged, f"in the component logs ({stack.logs}): {logged}"

    with subtests.test("unpaused, the scheduled run of wecom_directory_sync loads a snapshot"):
        rest.unpause(SYNC)
        rest.unpause(DELTAS)  # its first run's sensor defers meanwhile; checked below
        for consumer in CONSUMERS:  # before the sync: Airflow queues runs of unpaused consumers only
            rest.unpause(consumer)
        scheduled_runs = wait_for(lambda: rest.runs(SYNC, "scheduled"), STACK_DEADLINE_S, "a run", interval_s=POLL_S)
        scheduled = scheduled_runs[0]["dag_run_id"]
        run = rest.finished_run(SYNC, scheduled, STACK_DEADLINE_S)
        assert run["state"] == "success", rest.task_states(SYNC, scheduled)
        assert sync_rows(stack)[scheduled] == "success"

    with subtests.test("the sync that loaded the members triggered each downstream DAG once, with the counts"):
        (changed,) = what_changed(rest, consumer_runs(rest, users_asset(stack), 1))
        assert [(e["company"], e["run_id"], e["inserted"]) for e in changed] == [("default", scheduled, 300)]

    with subtests.test("a run triggered through the API with dry_run records its plan, fresh snapshot or not"):
        triggered = rest.call("POST", f"/dags/{SYNC}/dagRuns", json={"logical_date": None, "conf": {"dry_run": True}})
        run = rest.finished_run(SYNC, triggered["dag_run_id"], STACK_DEADLINE_S)
        assert run["state"] == "success", rest.task_states(SYNC, triggered["dag_run_id"])
        assert sync_rows(stack)[triggered["dag_run_id"]] == "dry_run"

    with subtests.test("airflow backfill create over three days: each day recorded skipped, extract skipped"):
        today = datetime.now(UTC).date()
        days = [(today - timedelta(days=n)).isoformat() for n in (4, 3, 2)]
        stack.airflow("backfill", "create", "--dag-id", SYNC, "--from-date", days[0], "--to-date", days[-1])
        runs = wait_for(lambda: finished_backfill(rest), STACK_DEADLINE_S, "three backfill runs", interval_s=POLL_S)
        assert sorted(r["logical_date"][:10] for r in runs) == days
        rows = sync_rows(stack)
        for run in runs:
            states = rest.task_states(SYNC, run["dag_run_id"])
            assert (run["state"], rows.get(run["dag_run_id"]), states["extract"]) == ("success", "skipped", "skipped")

    with subtests.test("a forced re-sync that changed nothing, the dry run and the backfill triggered nothing"):
        forced = rest.call("POST", f"/dags/{SYNC}/dagRuns", json={"logical_date": None, "conf": {"force": True}})
        run = rest.finished_run(SYNC, forced["dag_run_id"], STACK_DEADLINE_S)
        assert run["state"] == "success", rest.task_states(SYNC, forced["dag_run_id"])
        assert rest.task_states(SYNC, forced["dag_run_id"])["load"] == "success"  # loaded, and changed nothing
        # Runs are triggered by asset events only: still the scheduled sync's one, so no new run can come.
        assert [e["source_run_id"] for e in asset_events(rest, users_asset(stack))] == [scheduled]
        assert {consumer: len(rest.runs(consumer)) for consumer in CONSUMERS} == dict.fromkeys(CONSUMERS, 1)

    with subtests.test("the callback sensor defers; a sealed callback posted to the API server is applied"):
        wait_for(lambda: sensor_in_triggerer(rest), STACK_DEADLINE_S, "the sensor deferred", interval_s=POLL_S)
        userid = next(iter(members(stack)))
        edit = sim.patch(f"/_sim/users/{userid}", json={"position": "Deployment check"})
        assert edit.json()["changes"], edit.text
        # the simulator seals the change_contact event and POSTs it to /wecom/callback/wecom_default
        assert sim.post("/_sim/callbacks/flush", json={"timeout": STACK_DEADLINE_S}).json() == {"ok": True}
        wait_for(
            lambda: members(stack)[userid] == "Deployment check",
            STACK_DEADLINE_S,
            "the callback applied",
            state=lambda: f"events stored: {callback_events(stack)} (receiver: {stack.logs / 'api-server.log'})",
            interval_s=POLL_S,
        )

    with subtests.test("the callback that changed a member triggered each downstream DAG again"):
        changed = what_changed(rest, consumer_runs(rest, users_asset(stack), 2))[-1]
        assert [(e["dag_id"], e["table"], e["updated"]) for e in changed] == [(DELTAS, "wecom_users", 1)]

    if stack.options.executor == "celery":
        with subtests.test("both Celery workers ran tasks (the staging folder is shared)"):
            logs = component_logs(stack)
            received = {name: logs[name].count("execute_workload") for name in logs if name.startswith("celery-worker")}
            assert len(received) == 2 and all(received.values()), received

    shots = stack.home / "screenshots"
    shots.mkdir(exist_ok=True)
    with logged_in_page(stack.base_url, rest.token) as page:
        with subtests.test("the WeCom status page renders in the UI, and alone"):
            page.goto(f"{stack.base_url}/plugin/wecom-sync")
            page.frame_locator("iframe").get_by_text("Last good sync").first.wait_for()
            page.screenshot(path=shots / "status-in-ui.png")
            page.goto(f"{stack.base_url}/wecom/status/")
            text = page.locator("body").inner_text()
            page.screenshot(path=shots / "status-page.png", full_page=True)
            assert "WeCom Sync" in text and "backfill__" in text and "Deployment check" not in text

        with subtests.test("the wecom connection form renders with its own field labels"):
            open_connection_form(page, stack.base_url, "wecom_default")
            dialog = page.get_by_role("dialog")
            for label in ("API base URL", "Corp ID", "Secret"):
                dialog.get_by_text(label, exact=True).wait_for()
            dialog.get_by_text("Extra Fields", exact=True).click()  # the accordion: standard fields fold away
            for label in ("Callback Token", "EncodingAESKey"):
                dialog.get_by_text(label, exact=True).wait_for()
            page.screenshot(path=shots / "connection-form.png", full_page=True)

        with subtests.test("the connection form keeps the secret, callback token and AES key masked"):
            values = [field.input_value() for field in page.get_by_role("dialog").locator("input").all()]
            leaked = [name for name, value in secret_values(stack).items() if value in values]
            assert not leaked, f"shown in clear in the connection form: {leaked}"

        with subtests.test("the connection's Test button succeeds"):
            toast = connection_test_toast(page, stack.base_url, "wecom_default")
            page.screenshot(path=shots / "connection-test.png")
            assert "Test Connection Successful" in toast, toast

    with subtests.test("the REST API masks the secret, callback token and AES key"):
        connection = rest.call("GET", "/connections/wecom_default")
        shown = json.dumps(connection)
        leaked = [name for name, value in secret_values(stack).items() if value in shown]
        assert not leaked, f"GET /api/v2/connections/wecom_default shows {leaked}: {shown}"

    with subtests.test("task logs show none of the secrets"):
        logs = {task: rest.task_log(SYNC, scheduled, task) for task in ("extract", "load")}
        leaked = [
            (task, name) for task, log in logs.items() for name, value in secret_values(stack).items() if value in log
        ]
        assert not leaked, leaked


def asset_events(rest: Rest, uri: str) -> list[dict[str, Any]]:
    """The events of the asset with this URI (its name too), oldest first."""
    (asset,) = [a for a in rest.call("GET", "/assets", params={"uri_pattern": uri})["assets"] if a["uri"] == uri]
    assert asset["name"] == uri, asset
    return rest.call("GET", "/assets/events", params={"asset_id": asset["id"], "order_by": "timestamp"})["asset_events"]


def consumer_runs(rest: Rest, uri: str, count: int) -> list[dict[str, Any]]:
    """Once every downstream DAG has ``count`` finished runs, the reader's runs, oldest first.

    Each consumer's n-th run must have been queued by the asset's n-th event: after it, before the next.
    """

    def finished(consumer: str) -> list[dict[str, Any]] | None:
        runs = rest.runs(consumer)
        return runs if len(runs) >= count and all(r["state"] in FINISHED for r in runs) else None

    runs = {
        consumer: wait_for(partial(finished, consumer), STACK_DEADLINE_S, f"{consumer} runs", interval_s=POLL_S)
        for consumer in CONSUMERS
    }
    events = [datetime.fromisoformat(e["timestamp"]) for e in asset_events(rest, uri)]
    assert len(events) == count, events
    windows = list(zip(events, [*events[1:], datetime.max.replace(tzinfo=UTC)], strict=True))
    for consumer, its_runs in runs.items():
        its_runs.sort(key=lambda r: r["run_after"])
        assert len(its_runs) == count, (consumer, its_runs)
        assert {(r["state"], r["run_type"]) for r in its_runs} == {("success", "asset_triggered")}, (consumer, its_runs)
        queued = [datetime.fromisoformat(r["run_after"]) for r in its_runs]
        assert all(start <= at < end for at, (start, end) in zip(queued, windows, strict=True)), (consumer, queued)
    return runs[READER]


def what_changed(rest: Rest, runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The extra of each reader run's triggering events."""
    path = f"/dags/{READER}/dagRuns/{{}}/taskInstances/what_changed/xcomEntries/return_value"
    return [rest.call("GET", path.format(r["dag_run_id"]), params={"deserialize": True})["value"] for r in runs]


def finished_backfill(rest: Rest) -> list[dict[str, Any]] | None:
    runs = rest.runs(SYNC, "backfill")
    return runs if len(runs) == 3 and all(r["state"] in FINISHED for r in runs) else None


def sensor_in_triggerer(rest: Rest) -> bool:
    """A run's wait_for_callbacks is deferred, its CallbackEventsTrigger claimed by the triggerer."""
    for run in rest.runs(DELTAS):
        ti = rest.call("GET", f"/dags/{DELTAS}/dagRuns/{run['dag_run_id']}/taskInstances/wait_for_callbacks")
        trigger = ti.get("trigger") or {}
        if (
            ti["state"] == "deferred"
            and trigger.get("triggerer_id")
            and "CallbackEventsTrigger" in trigger["classpath"]
        ):
            return True
    return False


def secret_values(stack: AirflowLocal) -> dict[str, str]:
    s = stack.secrets
    return {"secret": s.corp_secret, "callback_token": s.callback_token, "encoding_aes_key": s.encoding_aes_key}
