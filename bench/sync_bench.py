"""End-to-end speed of a full directory sync against the simulator, next to a naive reference sync.

    .venv/bin/python -m bench.sync_bench --members 100000 --departments 10000 --strategy export --latency-ms 20

Starts ``python -m wecom_simulator`` as a subprocess with a generated company,
the given latency and WeCom's published limits (10,000 calls a minute and
150,000 an hour per API; ``--rate-limit-*`` scales them), and a throwaway
PostgreSQL cluster (``--db sqlite`` for a file). Then, each in its own child
process so that peak RSS belongs to one sync only:

1. our sync: extract (the chosen strategy) -> transform -> quality checks -> load -> publish
   (what the load task adds for the data platform: ``bench.publish``);
2. with ``--resync``, the same again with nothing changed (must write zero rows), once as
   scheduled runs do it (recorded ``unchanged``: no transform or load) and once forced
   (``{"force": true}``: the full compare);
3. unless ``--no-naive``, a naive reference written the way directory syncers
   usually are: sequential calls, user/list per department, one upsert per row.

The simulator's call counters and throttle windows are reset before each run,
as if the runs were minutes apart. Prints one table row per run and the naive
run's wall time divided by ours.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from bench import naive_sync  # noqa: E402
from bench.publish import preload, publish  # noqa: E402
from tests.support.throwaway_postgres import throwaway_postgres  # noqa: E402
from wecom.api.client import RateLimits, WeComClient  # noqa: E402
from wecom.api.extract import CHOICES, extract_directory  # noqa: E402
from wecom.pipeline import check_staged, load_staged, run_record, snapshot_digest, transform_staged  # noqa: E402
from wecom.store.loader import DirectoryLoader  # noqa: E402

CORP_ID = "wwbench0000000001"
SECRET = "bench-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the runs (each in a child process) ----------------------------------------------------------------


def limits_of(args: argparse.Namespace) -> RateLimits:
    return RateLimits(
        per_minute=args.rate_limit_per_minute,
        per_hour=args.rate_limit_per_hour,
        minute_s=args.rate_limit_window_s,
        hour_s=args.rate_limit_window_s * 60,
    )


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    """One full sync as the DAG runs it, timed per phase; its staged files are removed afterwards."""
    preload()
    with tempfile.TemporaryDirectory(prefix="wecom-bench-") as staging:
        return sync_once(args, Path(staging))


def sync_once(args: argparse.Namespace, staging: Path) -> dict[str, Any]:
    client = WeComClient(
        args.url,
        CORP_ID,
        SECRET,
        conn_id="bench",
        limits=limits_of(args),
        max_concurrency=args.max_workers,
        encoding_aes_key=AES_KEY,
        timeout=60.0,
    )
    phases: dict[str, float] = {}
    rss: dict[str, float] = {}
    started = time.perf_counter()
    with client:
        manifest = extract_directory(
            client,
            staging / "raw",
            strategy=args.strategy,
            max_workers=args.max_workers,
            export_block_size=args.export_block_size,
        )
    phases["extract"] = time.perf_counter() - started
    rss["extract"] = peak_rss_mb()
    loader = DirectoryLoader(create_engine(args.db_url))
    loader.ensure_schema()
    record = run_record(
        manifest,
        dag_id="sync_bench",
        run_id=args.run_id,
        logical_date=None,
        started_at=datetime.now(UTC),
        snapshot_digest=snapshot_digest(manifest),
    )
    mark = time.perf_counter()
    result = None if args.force else loader.record_if_unchanged(record)
    phases["compare"] = time.perf_counter() - mark
    counts: dict[str, int] = {}
    if result is None:
        mark = time.perf_counter()
        counts = transform_staged(staging / "raw", staging / "normalized", CORP_ID)
        phases["transform"] = time.perf_counter() - mark
        rss["transform"] = peak_rss_mb()
        mark = time.perf_counter()
        check_staged(staging / "normalized")
        phases["checks"] = time.perf_counter() - mark
        rss["checks"] = peak_rss_mb()
        mark = time.perf_counter()
        result = load_staged(loader, staging / "normalized", manifest, record)
        phases["load"] = time.perf_counter() - mark
        rss["load"] = peak_rss_mb()
        mark = time.perf_counter()
        publish(result, manifest, CORP_ID, args.db_url, staging / "openlineage.jsonl")
        phases["publish"] = time.perf_counter() - mark
    return {
        "strategy": manifest["strategy"],
        "strategy_reason": manifest["strategy_reason"],
        "members": manifest["users"],
        "departments": manifest["departments"],
        "api_calls": manifest["api_calls"],
        "phases": phases,
        "wall": time.perf_counter() - started,
        "rows_staged": sum(counts.values()),
        "rows_written": result.rows_written,
        "status": result.status,
        "concurrency": manifest["concurrency"],
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_after_phase_mb": rss,
    }


def run_naive(args: argparse.Namespace) -> dict[str, Any]:
    """The naive reference (``bench.naive_sync``) against the same simulator and database."""
    return naive_sync.run_naive(args.url, args.db_url, CORP_ID, SECRET)


# --- the driver -----------------------------------------------------------------------------------------


def wecom_limits(members: int, departments: int, latency_ms: float) -> argparse.Namespace:
    """A ``simulator`` company of this size behind WeCom's documented frequency limits, no concurrency cap."""
    return argparse.Namespace(
        members=members,
        departments=departments,
        seed=1,
        latency_ms=latency_ms,
        rate_limit_per_minute=10_000,
        rate_limit_per_hour=150_000,
        rate_limit_window_s=60.0,
        max_concurrency=None,
    )


@contextmanager
def simulator(args: argparse.Namespace):
    """``python -m wecom_simulator --port 0`` with the company and limits asked for; yields its URL."""
    command = [
        sys.executable, "-m", "wecom_simulator", "--port", "0",
        "--members", str(args.members), "--departments", str(args.departments), "--seed", str(args.seed),
        "--corp-id", CORP_ID, "--secret", SECRET, "--latency-ms", str(args.latency_ms),
        "--rate-limit-per-minute", str(args.rate_limit_per_minute),
        "--rate-limit-window-s", str(args.rate_limit_window_s),
        "--rate-limit-per-hour", str(args.rate_limit_per_hour),
        "--rate-limit-hour-window-s", str(args.rate_limit_window_s * 60),
        "--export-queue-s", "0.1", "--export-run-s", "0.2",
    ]  # fmt: skip
    if args.max_concurrency:
        command += ["--max-concurrency", str(args.max_concurrency)]
    env = {"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the simulator did not print its URL")
        requests.get(f"{url}/_sim/health", timeout=600).raise_for_status()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def database(args: argparse.Namespace, stack: ExitStack) -> str:
    """A fresh target database, removed on exit: a throwaway PostgreSQL cluster, or a SQLite file."""
    if args.db == "sqlite":
        return f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory(prefix='wecom-bench-'))}/target.db"
    return stack.enter_context(throwaway_postgres("bench"))


def child(
    args: argparse.Namespace, role: str, url: str, db_url: str, run_id: str, *, force: bool = False
) -> dict[str, Any]:
    requests.post(f"{url}/_sim/reset_stats", timeout=30).raise_for_status()
    argv = [sys.executable, "-m", "bench.sync_bench", *sys.argv[1:], "--role", role, "--url", url, "--db-url", db_url]
    argv += ["--run-id", run_id, *(["--force"] if force else [])]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"the {role} run failed")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    sim_stats = requests.get(f"{url}/_sim/stats", timeout=30).json()
    result["throttled_45009"] = sim_stats["throttled"]
    result["server_calls"] = sim_stats["calls"]
    return result


def show(label: str, result: dict[str, Any]) -> None:
    phases = result["phases"]
    load_s = phases.get("load", 0.0)
    calls = ", ".join(f"{k} {v}" for k, v in sorted(result["server_calls"].items()))
    print(
        f"| {label} | {result['strategy']} | {result['members']} | {result['departments']} | {calls} | "
        + " | ".join(
            f"{phases[p]:.1f}" if p in phases else "-" for p in ("extract", "compare", "transform", "checks", "load")
        )
        + (f" | {phases['publish']:.3f}" if "publish" in phases else " | -")
        + f" | {result['wall']:.1f} | {result['rows_staged'] / load_s if load_s else 0:,.0f} | "
        f"{result['rows_written']} | {result['status']} | {result['peak_rss_mb']:.0f} | {result['throttled_45009']} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_bench", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--members", type=int, default=100_000)
    add("--departments", type=int, default=10_000)
    add("--strategy", choices=CHOICES, default="auto")
    add("--latency-ms", type=float, default=20.0)
    add("--rate-limit-per-minute", type=int, default=10_000)
    add("--rate-limit-per-hour", type=int, default=150_000)
    add("--rate-limit-window-s", type=float, default=60.0, help="the minute window; the hour one is 60 times it")
    add("--max-concurrency", type=int, default=None, help="the simulator answers 45033 above this many in flight")
    add("--max-workers", type=int, default=16)
    add("--export-block-size", type=int, default=100_000)
    add("--db", choices=("postgresql", "sqlite"), default="postgresql")
    add("--seed", type=int, default=1)
    add("--resync", action="store_true", help="also time a second sync in which nothing changed")
    add("--no-naive", action="store_true", help="skip the naive reference sync")
    add("--role", choices=("ours", "naive"), help=argparse.SUPPRESS)
    add("--url", help=argparse.SUPPRESS)
    add("--db-url", help=argparse.SUPPRESS)
    add("--run-id", help=argparse.SUPPRESS)
    add("--force", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        print(json.dumps((run_ours if args.role == "ours" else run_naive)(args)))
        return
    with ExitStack() as stack:
        url = stack.enter_context(simulator(args))
        db_url = database(args, stack)
        print(
            f"simulator {url}: {args.members} members, {args.departments} departments, "
            f"{args.latency_ms} ms latency, {args.rate_limit_per_minute}/{args.rate_limit_window_s:g}s and "
            f"{args.rate_limit_per_hour}/{args.rate_limit_window_s * 60:g}s per API; target {args.db}",
            flush=True,
        )
        print(
            "| run | strategy | members | departments | API calls by endpoint | extract s | compare s | transform s | "
            "checks s | load s | publish s | wall s | rows/s loaded | rows written | status | peak RSS MB | 45009 |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        ours = child(args, "ours", url, db_url, "first")
        show("first sync", ours)
        print(f"  strategy reason: {ours['strategy_reason']}; concurrency {ours['concurrency']}", flush=True)
        print(f"  peak RSS MB after each phase: {ours['peak_rss_after_phase_mb']}", flush=True)
        if args.resync:
            again = child(args, "ours", url, db_url, "resync")
            show("no-change re-sync", again)
            print(f"  re-sync / first: {again['wall'] / ours['wall']:.2f}", flush=True)
            compared = child(args, "ours", url, db_url, "resync-forced", force=True)
            show("forced re-sync (full compare)", compared)
            print(f"  forced re-sync / first: {compared['wall'] / ours['wall']:.2f}", flush=True)
        if not args.no_naive:
            naive = child(args, "naive", url, db_url, "naive")
            show("naive reference", naive)
            print(f"  naive / ours (first sync, end to end): {naive['wall'] / ours['wall']:.1f}x", flush=True)


if __name__ == "__main__":
    main()
