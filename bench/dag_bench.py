"""Whole runs of the full-sync DAG through ``airflow dags test``, as a user runs it, beside the naive reference.

    .venv/bin/python -m bench.dag_bench --strategy export --strategy list [--repeat 3] [--no-naive]

Starts the simulator (``--members`` in ``--departments``, ``--latency-ms`` per call, WeCom's
published limits) and migrates a throwaway Airflow metadata database; then, ``--repeat`` times
for each strategy, runs ``airflow dags test wecom_directory_sync`` into a fresh SQLite target
(the embedded default) and times the whole process, from its start (Airflow's CLI start
included) to its exit, and each task as the run's log shows it (from "starting" to "end",
so a task's own start in Airflow counts), with the process's CPU seconds (user + system, threads
included; far steadier than wall time on a shared machine). The naive reference (``bench.naive_sync``) runs
against the same simulator into SQLite. Prints a line per run and the median, min and max per
strategy, and the naive one's median divided by ours. Each run's log stays in ``--keep`` when
given (default: a temporary folder removed at the end).

``--checkout PATH`` runs another checkout's DAG with that checkout's ``.venv`` (the same simulator,
the same bench): before/after figures on one machine, one right after the other. ``--profile DIR``
runs each ``airflow dags test`` under ``py-spy record`` (raw format, subprocesses included) and
writes DIR/<strategy>-<n>.raw for ``bench.profile_report``; sampling costs CPU, so profiled runs
are for where the time goes, not for the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from bench.sync_bench import AES_KEY, CORP_ID, SECRET, simulator, wecom_limits  # noqa: E402

DAG_ID = "wecom_directory_sync"
PROFILE_RATE = 100  # py-spy samples a second: bench.profile_report --rate must match
STRATEGIES = ("export", "list", "detail", "ids")


@dataclass
class DagRun:
    """One timed ``airflow dags test``: wall seconds, per-task seconds, peak memory, what the simulator saw."""

    strategy: str
    wall: float
    tasks: dict[str, float]
    cli_start: float
    cpu: float
    peak_rss_mb: float
    members: int
    api_calls: dict[str, int] = field(default_factory=dict)
    throttled: int = 0

    def line(self) -> str:
        tasks = " ".join(f"{name} {seconds:.1f}" for name, seconds in self.tasks.items())
        return (
            f"  {self.strategy:<7} whole run {self.wall:6.1f} s (CLI start {self.cli_start:.1f}; {tasks}) "
            f"CPU {self.cpu:.1f} s, peak RSS {self.peak_rss_mb:.0f} MB, {self.members} members, "
            f"45009: {self.throttled}, API calls {sum(self.api_calls.values())}"
        )


def task_seconds(log: str) -> tuple[dict[str, float], float | None]:
    """Each task's seconds from its "[DAG TEST] starting" line to its "end task" line, and when the first
    task started (for the CLI's start-up)."""
    started: dict[str, datetime] = {}
    seconds: dict[str, float] = {}
    first = None
    for line in log.splitlines():
        match = re.search(r"^(\S+) .*\[DAG TEST\] (starting|end task) task_id=(\w+)", line)
        if not match:
            continue
        at = datetime.fromisoformat(match[1].rstrip("Z"))
        if match[2] == "starting":
            started[match[3]] = at
            first = first or at
        elif match[3] in started:
            seconds[match[3]] = (at - started[match[3]]).total_seconds()
    return seconds, first.timestamp() if first else None


@contextmanager
def airflow_home(keep: Path | None, checkout: Checkout) -> Iterator[dict[str, str]]:
    """A migrated metadata database and the environment that points Airflow at it and at the checkout."""
    with tempfile.TemporaryDirectory(prefix="wecom-dag-bench-") as tmp:
        home = (keep or Path(tmp)).resolve() / "airflow-home"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(checkout.root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(checkout.root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONPATH": str(checkout.root / "plugins"),
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "WECOM_"))} | env
        migrated = subprocess.run(
            [checkout.python, "-m", "airflow", "db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            cwd=checkout.root,
            check=False,
        )
        if migrated.returncode:
            raise SystemExit(f"airflow db migrate failed:\n{migrated.stdout[-2000:]}{migrated.stderr[-2000:]}")
        yield env


@dataclass(frozen=True)
class Checkout:
    """The code under test: a checkout's root and the Python of its ``.venv``."""

    root: Path
    python: str

    @classmethod
    def at(cls, root: Path | None) -> Checkout:
        if root is None:
            return cls(ROOT, sys.executable)
        python = root / ".venv" / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"{root} has no .venv: run `make venv` there first")
        return cls(root, str(python))

    @property
    def aes_key_extra(self) -> str:
        """The connection extra holding the AES key: ``encoding_aes_key`` until it became ``callback_aes_secret``."""
        package = (self.root / "plugins" / "wecom").glob("*.py")
        renamed = any("callback_aes_secret" in module.read_text() for module in package)
        return "callback_aes_secret" if renamed else "encoding_aes_key"


def dags_test_command(checkout: Checkout, profile: Path | None) -> list[str]:
    """``airflow dags test`` of the checkout, under py-spy (this venv's) when profiling into ``profile``."""
    command = [checkout.python, "-m", "airflow", "dags", "test", DAG_ID]
    if profile is None:
        return command
    py_spy = Path(sys.executable).parent / "py-spy"
    return [
        str(py_spy),
        "record",
        "-r",
        str(PROFILE_RATE),
        "-f",
        "raw",
        "-o",
        str(profile),
        "--subprocesses",
        "--",
        *command,
    ]


def run_dag(env: dict[str, str], url: str, strategy: str, workdir: Path, args: argparse.Namespace) -> DagRun:
    """One first sync of the company into a fresh SQLite file, timed from the CLI's start to its exit."""
    target = workdir / f"target-{strategy}-{time.time_ns()}.db"
    extra = {"strategy": strategy, args.checkout.aes_key_extra: AES_KEY, "max_workers": args.max_workers}
    run_env = env | {
        "AIRFLOW_CONN_WECOM_DEFAULT": json.dumps(
            {"conn_type": "wecom", "host": url, "login": CORP_ID, "password": SECRET, "extra": extra}
        ),
        "AIRFLOW_CONN_WECOM_TARGET_DB": json.dumps({"conn_type": "sqlite", "host": str(target)}),
        "AIRFLOW_VAR_WECOM_COMPANIES": json.dumps([{"name": "default", "retries": 0}]),
        "AIRFLOW__WECOM__STAGING_URI": f"file://{workdir}/staging",
    }
    requests.post(f"{url}/_sim/reset_stats", timeout=30).raise_for_status()
    log_path = workdir / f"{target.stem}.log"
    profile = None
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        profile = args.profile / f"{strategy}-{len(list(args.profile.glob(f'{strategy}-*.raw'))) + 1}.raw"
    started = time.time()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            dags_test_command(args.checkout, profile),
            env=run_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=args.checkout.root,
        )
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.time() - started
    output = log_path.read_text(errors="replace")
    if status != 0:
        raise SystemExit(f"airflow dags test failed ({strategy}); log: {log_path}\n{output[-3000:]}")
    tasks, first_task = task_seconds(output)
    stats = requests.get(f"{url}/_sim/stats", timeout=30).json()
    engine = create_engine(f"sqlite:///{target}")
    with engine.connect() as conn:
        members = conn.execute(text("SELECT COUNT(*) FROM wecom_users WHERE NOT is_deleted")).scalar_one()
    engine.dispose()
    target.unlink()
    return DagRun(
        strategy=strategy,
        wall=wall,
        tasks=tasks,
        cli_start=(first_task - started) if first_task else 0.0,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        members=members,
        api_calls=stats["calls"],
        throttled=stats["throttled"],
    )


def run_naive(url: str, workdir: Path) -> dict[str, Any]:
    """The naive reference into a fresh SQLite file, in its own process."""
    requests.post(f"{url}/_sim/reset_stats", timeout=30).raise_for_status()
    target = workdir / f"naive-{time.time_ns()}.db"
    done = subprocess.run(
        [sys.executable, "-m", "bench.naive_sync", "--url", url, "--db-url", f"sqlite:///{target}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    target.unlink()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["throttled"] = requests.get(f"{url}/_sim/stats", timeout=30).json()["throttled"]
    return result


def spread(values: list[float]) -> str:
    """Median with min and max: how figures on a shared machine are reported."""
    return f"{statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.dag_bench", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--strategy", action="append", choices=STRATEGIES, help="repeatable (default: export and list)")
    add("--members", type=int, default=100_000)
    add("--departments", type=int, default=10_000)
    add("--latency-ms", type=float, default=20.0)
    add("--repeat", type=int, default=3, help="runs per strategy (and of the naive reference)")
    add("--max-workers", type=int, default=16, help="the connection's max_workers")
    add("--no-naive", action="store_true", help="skip the naive reference")
    add("--keep", type=lambda p: Path(p).resolve(), help="keep the Airflow home and the run logs here")
    add(
        "--checkout",
        type=lambda p: Path(p).resolve(),
        help="run this checkout's DAG with its .venv (default: this one)",
    )
    add("--profile", type=lambda p: Path(p).resolve(), help="record a py-spy profile of each run into this folder")
    args = parser.parse_args(argv)
    args.checkout = Checkout.at(args.checkout)
    strategies = args.strategy or ["export", "list"]
    limits = wecom_limits(args.members, args.departments, args.latency_ms)
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        url = stack.enter_context(simulator(limits))
        env = stack.enter_context(airflow_home(args.keep, args.checkout))
        workdir = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wecom-dag-bench-")))
        print(
            f"simulator {url}: {args.members} members in {args.departments} departments, {args.latency_ms:g} ms per "
            f"call, 10,000 calls a minute per API; target SQLite; {args.repeat} run(s) each of {args.checkout.root}",
            flush=True,
        )
        for strategy in strategies:
            runs = []
            for _ in range(args.repeat):
                runs.append(run_dag(env, url, strategy, workdir, args))
                print(runs[-1].line(), flush=True)
            results[strategy] = runs
            print(f"  {strategy}: whole run {spread([r.wall for r in runs])}; CPU {spread([r.cpu for r in runs])}")
        if not args.no_naive:
            naive = []
            for _ in range(args.repeat):
                naive.append(run_naive(url, workdir))
                print(
                    f"  naive   whole run {naive[-1]['wall']:6.1f} s (extract {naive[-1]['phases']['extract']:.1f}, "
                    f"load {naive[-1]['phases']['load']:.1f}), {naive[-1]['members']} members",
                    flush=True,
                )
            results["naive"] = naive
            naive_median = statistics.median(r["wall"] for r in naive)
            print(f"  naive: whole run {spread([r['wall'] for r in naive])}", flush=True)
            for strategy in strategies:
                ours = statistics.median(r.wall for r in results[strategy])
                print(f"  naive / {strategy}: {naive_median / ours:.1f}x", flush=True)
    return results


if __name__ == "__main__":
    main()
