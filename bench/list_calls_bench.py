"""The list path's calls alone: our client's user/list walk beside plain threads on a bare session.

    .venv/bin/python -m bench.list_calls_bench [--departments 2000] [--threads 16] [--repeat 3]

Starts the simulator (``--members`` in ``--departments``, ``--latency-ms`` per call, WeCom's
published limits) and, ``--repeat`` times, calls user/list once per department two ways:

* plain: ``--threads`` threads sharing one ``requests.Session``, one GET each, nothing else: the
  pace this server allows from this machine, the floor of the list path's extract;
* ours: ``WeComClient.user_list`` through ``wecom.api.extract.concurrent_map`` with the same
  ``max_workers``, as the extract runs it (rate budget, concurrency gate, retries, checks).

Prints each run's wall seconds, calls a second and this process's CPU milliseconds per call
(all threads; the simulator runs in its own process), then the median, min and max, and ours
divided by plain. The gap is the client's own cost per call, which is what its changes must shrink.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from bench.sync_bench import CORP_ID, SECRET, simulator, wecom_limits  # noqa: E402
from wecom.api.client import WeComClient  # noqa: E402
from wecom.api.extract import concurrent_map  # noqa: E402


def plain(url: str, ids: list[int], threads: int) -> None:
    """One GET per department from ``threads`` threads on one session: no budget, gate or checks."""
    with requests.Session() as session:
        adapter = requests.adapters.HTTPAdapter(pool_connections=threads, pool_maxsize=threads)
        session.mount("http://", adapter)
        token = session.get(f"{url}/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": SECRET}, timeout=30)
        params = {"access_token": token.json()["access_token"]}

        def one(dept_id: int) -> None:
            answer = session.get(f"{url}/cgi-bin/user/list", params={**params, "department_id": dept_id}, timeout=30)
            if answer.json()["errcode"] != 0:
                raise RuntimeError(f"user/list {dept_id}: {answer.text[:200]}")

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, ids))


def ours(url: str, ids: list[int], threads: int) -> None:
    """The extract's walk: the client's user/list through concurrent_map."""
    with WeComClient(url, CORP_ID, SECRET, conn_id="bench", max_concurrency=threads, timeout=30.0) as client:
        for dept_id, result in concurrent_map(client.user_list, ids, threads):
            if not isinstance(result, list):
                raise RuntimeError(f"user/list {dept_id}: {result}")


def timed(url: str, calls: Callable[[], None]) -> tuple[float, float, int]:
    """Wall seconds, this process's CPU seconds, and the 45009 answers the simulator counted."""
    requests.post(f"{url}/_sim/reset_stats", timeout=30).raise_for_status()
    wall, cpu = time.perf_counter(), time.process_time()
    calls()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, requests.get(f"{url}/_sim/stats", timeout=30).json()["throttled"]


def spread(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):.2f}{unit} (min {min(values):.2f}, max {max(values):.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.list_calls_bench", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--members", type=int, default=20_000)
    add("--departments", type=int, default=2_000)
    add("--latency-ms", type=float, default=20.0)
    add("--threads", type=int, default=16, help="plain threads, and our max_workers")
    add("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    limits = wecom_limits(args.members, args.departments, args.latency_ms)
    with simulator(limits) as url:
        with WeComClient(url, CORP_ID, SECRET, conn_id="bench") as client:
            ids = [department["id"] for department in client.department_list()]
        print(f"simulator {url}: user/list x {len(ids)}, {args.latency_ms:g} ms per call, {args.threads} threads")
        figures: dict[str, list[tuple[float, float, int]]] = {"plain": [], "ours": []}
        for _ in range(args.repeat):
            for name, walk in (("plain", plain), ("ours", ours)):
                wall, cpu, throttled = timed(url, lambda walk=walk: walk(url, ids, args.threads))
                figures[name].append((wall, cpu, throttled))
                print(
                    f"  {name:<5} {wall:6.2f} s, {len(ids) / wall:6.0f} calls/s, "
                    f"CPU {1000 * cpu / len(ids):.2f} ms/call, 45009: {throttled}",
                    flush=True,
                )
        for name, runs in figures.items():
            print(
                f"  {name}: wall {spread([r[0] for r in runs], ' s')}; "
                f"CPU {spread([1000 * r[1] / len(ids) for r in runs], ' ms/call')}"
            )
        ratio = statistics.median(r[0] for r in figures["ours"]) / statistics.median(r[0] for r in figures["plain"])
        print(f"  ours / plain wall: {ratio:.2f}")


if __name__ == "__main__":
    main()
