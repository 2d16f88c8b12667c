"""Applying 10,000 pending callback events, half of them ids-only, against a simulator with 20 ms latency.

The simulator runs as its own process (``python -m wecom_simulator``) so that it does not share
the applier's interpreter. The events are stored first (not timed): ``--events`` / 2 full-form
member events (a create and an update for each of ``--events`` / 4 new members, after the
create_party of the root department they join) and
``--events`` / 2 ids-only update_user events for distinct existing members (``UserID`` and their
``Department``, as WeCom sends them), each needing a fetch. Then one ``DeltaApplier.apply`` is
timed, as the DAG's apply task runs it; its CPU seconds are printed beside, steadier than wall
time on a shared machine.

    .venv/bin/python bench/apply_bench.py [--events 10000] [--latency-ms 20] [--workers 16] [--database postgresql]

Target (issue 20): 10,000 events in at most 5 s on SQLite, 8 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from sqlalchemy import text  # noqa: E402

from tests.support.throwaway_postgres import throwaway_postgres  # noqa: E402
from wecom.api.client import WeComClient  # noqa: E402
from wecom.callbacks.apply import DeltaApplier  # noqa: E402
from wecom.callbacks.events_table import NewEvent, store_events  # noqa: E402
from wecom.callbacks.parse import parse_event  # noqa: E402
from wecom.store.engine import create_target_engine  # noqa: E402
from wecom.store.loader import DirectoryLoader  # noqa: E402
from wecom.store.run_records import RunRecord  # noqa: E402

CORP_ID = "wwapplybench00001"
SECRET = "apply-bench-secret"


def event_xml(change_type: str, create_time: int, **fields: object) -> str:
    body = "".join(f"<{tag}><![CDATA[{value}]]></{tag}>" for tag, value in fields.items())
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[{change_type}]]></ChangeType>{body}</xml>"
    )


def start_simulator(members: int, latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "wecom_simulator", "--port", "0", "--members", str(members), "--departments", "200",
         "--corp-id", CORP_ID, "--secret", SECRET, "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT / "plugins",
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="target database URL (default: a fresh SQLite file or throwaway PostgreSQL)")
    args = parser.parse_args()
    ids_only = args.events // 2
    new_members = (args.events - ids_only) // 2

    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        url = args.url or (
            stack.enter_context(throwaway_postgres("apply_bench"))
            if args.database == "postgresql"
            else f"sqlite:///{Path(tmp) / 'target.db'}"
        )
        engine = create_target_engine(url)
        DirectoryLoader(engine).ensure_schema()
        simulator, base_url = start_simulator(ids_only + 100, args.latency_ms)
        try:
            with WeComClient(base_url, CORP_ID, SECRET) as client:
                # An ids-only event carries the member's departments, as WeCom sends them.
                departments: dict[str, list[int]] = {}
                for row in client.user_list_id():
                    departments.setdefault(row["userid"], []).append(row["department"])
                userids = sorted(departments)[:ids_only]
                now, start = datetime.now(UTC), int(time.time()) - 3600
                with engine.begin() as conn:
                    # The root department the members join: an event naming an unknown one would wait.
                    xmls = [event_xml("create_party", start - 1, Id=1, Name="Root", ParentId=0, Order=1)]
                    xmls += [
                        event_xml(change, start + i, UserID=f"bench{i:06d}", Name=f"Bench {i}", Department="1",
                                  Position=f"P{change}")
                        for i in range(new_members)
                        for change in ("create_user", "update_user")
                    ]  # fmt: skip
                    xmls += [
                        event_xml("update_user", start + i, UserID=u, Department=",".join(map(str, departments[u])))
                        for i, u in enumerate(userids)
                    ]
                    store_events(conn, [NewEvent(CORP_ID, None, parse_event(xml), xml, now) for xml in xmls])
                pending = len(xmls)
                applier = DeltaApplier(engine, client, max_workers=args.workers, batch_size=pending)
                run = RunRecord(dag_id="apply_bench", run_id="bench", corp_id=CORP_ID, kind="delta")
                began, cpu = time.perf_counter(), time.process_time()
                result = applier.apply(run)
                elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        finally:
            simulator.terminate()
            simulator.wait(timeout=10)
        with engine.connect() as conn:
            statuses = dict(
                conn.execute(text("SELECT status, COUNT(*) FROM wecom_callback_events GROUP BY status")).all()
            )
        engine.dispose()

    backend = engine.url.get_backend_name()
    print(f"target:        {backend}, simulator latency {args.latency_ms:g} ms, workers {args.workers}")
    print(f"events:        {pending} pending ({ids_only} ids-only), now {statuses}")
    print(f"api calls:     {result.api_calls}")
    print(f"users:         {result.users}")
    print(f"wall time:     {elapsed:.2f} s (CPU {cpu:.2f} s)")
    print(f"throughput:    {pending / elapsed:,.0f} events/s  (target: 10,000 in 5 s SQLite, 8 s PostgreSQL)")


if __name__ == "__main__":
    main()
