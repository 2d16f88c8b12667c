"""Throughput, latency and loss of the standalone callback receiver on a SQLite target.

Starts ``python -m wecom.receiver`` (uvicorn) as WeCom would reach it, over
loopback, with the connection in ``AIRFLOW_CONN_*`` variables. Requests are
encrypted and signed before the clock starts, and sent by a lean keep-alive
HTTP/1.1 client so that the client, which shares the CPUs, costs little.

    .venv/bin/python bench/receiver_bench.py [--events 20000] [--concurrency 16] [--burst 10000]

Phases: a sustained run (``--events`` at ``--concurrency``), then a burst of
``--burst`` events sent at once over ``--burst-concurrency`` connections;
afterwards every event must be in ``wecom_callback_events`` exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from wecom.crypto import WeComCrypto  # noqa: E402

CONN_ID = "wecom_default"
CORP_ID = "wwbench0000000001"
TOKEN = "benchToken42"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CRYPTO = WeComCrypto(TOKEN, AES_KEY, CORP_ID)


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


async def post_all(port: int, requests: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    """Send every request over ``concurrency`` keep-alive connections: (seconds, latencies, failures)."""
    queue = iter(requests)
    latencies: list[float] = []
    failures = 0

    async def connection() -> None:
        nonlocal failures
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
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200") or body != b"success":
                failures += 1
        writer.close()
        await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, failures


def report(name: str, seconds: float, latencies: list[float], failures: int) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"{name:<10} {len(ms):>6} events in {seconds:6.2f} s = {len(ms) / seconds:7.0f} events/s | "
        f"latency p50 {statistics.median(ms):6.2f} ms  p99 {p99:6.2f} ms  max {ms[-1]:6.2f} ms | "
        f"failures {failures}"
    )


def start_receiver(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env |= {
        "PYTHONPATH": str(ROOT / "plugins"),
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW_CONN_WECOM_DEFAULT": json.dumps(
            {
                "conn_type": "wecom",
                "login": CORP_ID,
                "extra": {"callback_token": TOKEN, "encoding_aes_key": AES_KEY},
            }
        ),
        "AIRFLOW_CONN_WECOM_TARGET_DB": json.dumps({"conn_type": "sqlite", "host": str(workdir / "target.db")}),
    }
    command = [sys.executable, "-m", "wecom.receiver", "--conn-id", CONN_ID, "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "warning"], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise SystemExit("the receiver did not start") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--burst-concurrency", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wecom-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        total = 500 + args.events + args.burst
        print(f"encrypting and signing {total} events ...", flush=True)
        requests = [request_bytes(port, seq) for seq in range(total)]
        warmup, sustained, burst = (
            requests[:500],
            requests[500 : 500 + args.events],
            requests[500 + args.events :],
        )
        server = start_receiver(workdir, port)
        try:
            asyncio.run(post_all(port, warmup, 4))
            report("sustained", *asyncio.run(post_all(port, sustained, args.concurrency)))
            report("burst", *asyncio.run(post_all(port, burst, args.burst_concurrency)))
        finally:
            server.terminate()
            server.wait(timeout=30)
        with sqlite3.connect(workdir / "target.db") as db:
            rows, distinct = db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT entity_id) FROM wecom_callback_events"
            ).fetchone()
        lost = total - distinct
        print(f"stored rows {rows}, distinct events {distinct} of {total} sent: {lost} lost")
        if lost or rows != total:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
