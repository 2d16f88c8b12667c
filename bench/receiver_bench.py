"""Throughput, latency, loss and the answer time under a locked table, of the standalone callback receiver.

Starts ``python -m wecom.receiver`` (uvicorn) as WeCom would reach
it, over loopback, with the connections in ``AIRFLOW_CONN_*`` variables.
Requests are encrypted and signed before the clock starts, and sent by a lean
keep-alive HTTP/1.1 client so that the client, which shares the CPUs, costs
little.

    .venv/bin/python bench/receiver_bench.py [--database sqlite|postgresql] [--events 20000] [--burst 10000]

Per target (SQLite; or on a throwaway PostgreSQL the owner role, then the
least-privilege role of include/sql/grants/receiver.sql): a sustained run
(``--events`` at ``--concurrency``), a burst of ``--burst`` events over
``--burst-concurrency`` connections, then ``--locked`` events sent one by one
while another session holds the events table locked (each must be answered,
503, within the write deadline), sent again once the lock is released as
WeCom retries them. Afterwards every event must be in the table exactly once.
The throwaway PostgreSQL runs without fsync: compare the roles, not absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from sqlalchemy import Engine, create_engine, text  # noqa: E402

from tests.support.throwaway_postgres import throwaway_postgres  # noqa: E402
from wecom.api.crypto import WeComCrypto  # noqa: E402
from wecom.callbacks.events_table import ensure_callback_events_table  # noqa: E402
from wecom.store.sql import read_statements  # noqa: E402

CONN_ID = "wecom_default"
CORP_ID = "wwbench0000000001"
TOKEN = "benchToken42"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CRYPTO = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
RECEIVER_ROLE = "wecom_receiver"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def event(seq: int) -> str:
    """A realistic update_user event, distinct per ``seq``."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_contact]]></Event><ChangeType>update_user</ChangeType>"
        f"<UserID><![CDATA[user{seq:07d}]]></UserID><Name><![CDATA[成员{seq}]]></Name>"
        "<Department><![CDATA[1,2]]></Department><Position><![CDATA[工程师]]></Position>"
        "<ExtAttr><Item><Name><![CDATA[工号]]></Name><Type>0</Type>"
        f"<Text><Value><![CDATA[E{seq}]]></Value></Text></Item></ExtAttr></xml>"
    )


def request_bytes(port: int, seq: int) -> bytes:
    encrypted, signature, timestamp, nonce = CRYPTO.encrypt(event(seq))
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    ).encode()
    head = (
        f"POST /wecom/callback/{CONN_ID}?msg_signature={signature}&timestamp={timestamp}&nonce={nonce} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def post_all(port: int, requests: list[bytes], concurrency: int) -> tuple[float, list[float], list[int]]:
    """Send every request over ``concurrency`` keep-alive connections: (seconds, latencies, statuses)."""
    queue = iter(requests)
    latencies: list[float] = []
    statuses: list[int] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in queue:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses.append(int(head.split(b" ", 2)[1]))
        writer.close()
        await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux ``/proc``): unlike wall time, barely moved by
    whatever else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(pid: int, port: int, requests: list[bytes], concurrency: int) -> tuple[float, list[float], list[int], float]:
    """``post_all`` plus the receiver's CPU seconds meanwhile."""
    before = cpu_seconds(pid)
    seconds, latencies, statuses = asyncio.run(post_all(port, requests, concurrency))
    return seconds, latencies, statuses, cpu_seconds(pid) - before


def report(name: str, seconds: float, latencies: list[float], statuses: list[int], cpu: float) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    failures = sum(status != 200 for status in statuses)
    print(
        f"  {name:<10} {len(ms):>6} events in {seconds:6.2f} s = {len(ms) / seconds:7.0f} events/s | "
        f"latency p50 {statistics.median(ms):6.2f} ms  p99 {p99:6.2f} ms  max {ms[-1]:6.2f} ms | "
        f"not 200: {failures} | receiver CPU {cpu * 1e6 / len(ms):.0f} µs/event",
        flush=True,
    )


@contextlib.contextmanager
def receiver(workdir: Path, port: int, target: dict[str, Any]) -> Iterator[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env |= {
        "PYTHONPATH": str(ROOT / "plugins"),
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW_CONN_WECOM_DEFAULT": json.dumps(
            {
                "conn_type": "wecom",
                "login": CORP_ID,
                "password": "bench-secret",
                "extra": {"callback_token": TOKEN, "callback_aes_secret": AES_KEY},
            }
        ),
        "AIRFLOW_CONN_WECOM_TARGET_DB": json.dumps(target),
    }
    command = [sys.executable, "-m", "wecom.receiver", "--conn-id", CONN_ID, "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "error"], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the receiver did not start") from None
                time.sleep(0.2)
        yield server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def table_locked(owner: Engine) -> Iterator[None]:
    """Another session holds the events table, as a long migration or VACUUM FULL would."""
    with owner.connect() as connection:
        if owner.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            connection.execute(text("LOCK TABLE wecom_callback_events IN ACCESS EXCLUSIVE MODE"))
        yield
        connection.rollback()


def run_target(name: str, target: dict[str, Any], owner: Engine, args: argparse.Namespace, workdir: Path) -> None:
    """The phases against one target; exits non-zero if an event is lost or stored twice."""
    port = free_port()
    total = 500 + args.events + args.burst + args.locked
    print(f"{name}: encrypting and signing {total} events ...", flush=True)
    requests = [request_bytes(port, seq) for seq in range(total)]
    cuts = [500, 500 + args.events, 500 + args.events + args.burst]
    warmup, sustained, burst, locked = (requests[a:b] for a, b in zip([0, *cuts], [*cuts, total], strict=True))
    with receiver(workdir, port, target) as pid:
        asyncio.run(post_all(port, warmup, 4))
        report("sustained", *timed(pid, port, sustained, args.concurrency))
        report("burst", *timed(pid, port, burst, args.burst_concurrency))
        with table_locked(owner):
            _, latencies, statuses = asyncio.run(post_all(port, locked, 1))
        print(
            f"  locked     {len(locked)} events answered {sorted(set(statuses))} in at most "
            f"{max(latencies):.2f} s (median {statistics.median(latencies):.2f} s)",
            flush=True,
        )
        _, _, retried = asyncio.run(post_all(port, locked, 1))
        if set(retried) != {200}:
            raise SystemExit(f"retries after the lock answered {sorted(set(retried))}")
    with owner.connect() as connection:
        rows, distinct = connection.execute(
            text("SELECT COUNT(*), COUNT(DISTINCT entity_id) FROM wecom_callback_events")
        ).one()
    print(f"  stored rows {rows}, distinct events {distinct} of {total} sent: {total - distinct} lost", flush=True)
    if rows != total or distinct != total:
        raise SystemExit(1)


def postgres_targets(url: str) -> Iterator[tuple[str, dict[str, Any], Engine]]:
    """The owner role, then the least-privilege receiver role, each on a fresh database."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {RECEIVER_ROLE} LOGIN"))
        for database in ("bench_owner", "bench_receiver"):
            connection.execute(text(f"CREATE DATABASE {database}"))
    for name, role, database in [("owner", "postgres", "bench_owner"), ("receiver", RECEIVER_ROLE, "bench_receiver")]:
        owner = create_engine(admin.url.set(database=database))
        ensure_callback_events_table(owner)
        with owner.begin() as connection:
            for statement in read_statements("grants/receiver.sql", "postgresql"):
                connection.execute(text(statement))
        target = {"conn_type": "postgres", "host": "127.0.0.1", "port": admin.url.port, "login": role}
        yield f"PostgreSQL, {name} role", target | {"schema": database}, owner
        owner.dispose()
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--burst-concurrency", type=int, default=64)
    parser.add_argument("--locked", type=int, default=5, help="events sent while the table is locked")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wecom-bench-") as tmp:
        workdir = Path(tmp)
        if args.database == "sqlite":
            owner = create_engine(f"sqlite:///{workdir / 'target.db'}")
            run_target("SQLite", {"conn_type": "sqlite", "host": str(workdir / "target.db")}, owner, args, workdir)
            owner.dispose()
            return
        with throwaway_postgres() as url:
            for name, target, owner in postgres_targets(url):
                run_target(name, target, owner, args, workdir)


if __name__ == "__main__":
    main()
