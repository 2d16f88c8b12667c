"""How long the dbt project (include/dbt) takes on a large directory: dbt build and source freshness.

    .venv/bin/python -m bench.dbt_bench --members 100000 --departments 10000 --moves 1000

Loads a throwaway PostgreSQL with two full syncs from the simulator (``export``, as
bench.sync_bench runs them), moving ``--moves`` members to another department in between so the
history has versions to fold, then times ``dbt build`` (every model and test) and ``dbt source
freshness`` from .venv-dbt (`make dbt-venv`), and prints the models' row counts. dbt runs in a DAG
of its own after the sync, so it adds nothing to a sync run's time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests
from sqlalchemy import create_engine, make_url, text

from bench.sync_bench import ROOT, database, simulator, sync_once

DBT = ROOT / ".venv-dbt" / "bin" / "dbt"
MODELS = (
    "wecom_org_departments",
    "wecom_org_chart",
    "wecom_members_as_of",
    "wecom_member_department_stints",
    "wecom_member_department_moves",
)


def move_members(url: str, db_url: str, moves: int) -> None:
    """Move every n-th member, ``moves`` of them, into the department after their main one."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        departments = [d for (d,) in conn.execute(text("SELECT department_id FROM wecom_departments ORDER BY 1"))]
        members = conn.execute(text("SELECT userid, main_department_id FROM wecom_users ORDER BY userid")).all()
    engine.dispose()
    step = max(1, len(members) // moves)
    with requests.Session() as session:
        for userid, main in members[::step][:moves]:
            target = departments[(departments.index(main) + 1) % len(departments)]
            answer = session.patch(
                f"{url}/_sim/users/{userid}", json={"department": [target], "main_department": target}, timeout=60
            )
            answer.raise_for_status()


def dbt(db_url: str, target: Path, *command: str) -> float:
    url = make_url(db_url)
    env = os.environ | {
        "PGHOST": url.host or "",
        "PGPORT": str(url.port),
        "PGUSER": url.username or "",
        "PGDATABASE": url.database or "",
        "DBT_PROJECT_DIR": str(ROOT / "include" / "dbt"),
        "DBT_PROFILES_DIR": str(ROOT / "include" / "dbt"),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
    }
    started = time.perf_counter()
    done = subprocess.run([str(DBT), *command], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"dbt {' '.join(command)} failed:\n{done.stdout[-4000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dbt_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--departments", type=int, default=10_000)
    parser.add_argument("--moves", type=int, default=1_000, help="members moved between the two syncs")
    args = parser.parse_args()
    if not DBT.exists():
        raise SystemExit(f"{DBT} is missing: run `make dbt-venv`")
    # what bench.sync_bench's simulator, database and sync_once read, as its defaults set them
    args.__dict__.update(
        seed=1, latency_ms=20.0, max_concurrency=None, db="postgresql", strategy="export", max_workers=16,
        export_block_size=100_000, force=True, rate_limit_per_minute=10_000, rate_limit_per_hour=150_000,
        rate_limit_window_s=60.0,
    )  # fmt: skip
    with ExitStack() as stack:
        args.url = stack.enter_context(simulator(args))
        args.db_url = database(args, stack)
        staging = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wecom-dbt-bench-")))
        for run_id in ("first", "after-moves"):
            args.run_id = run_id
            result = sync_once(args, staging / run_id)
            print(f"sync {run_id}: {result['status']}, {result['rows_written']} rows written, {result['wall']:.1f} s")
            if run_id == "first":
                move_members(args.url, args.db_url, args.moves)
        target = staging / "dbt"
        build = dbt(args.db_url, target, "build")
        freshness = dbt(args.db_url, target, "source", "freshness")
        engine = create_engine(args.db_url)
        with engine.connect() as conn:
            counts = {m: conn.execute(text(f"SELECT COUNT(*) FROM wecom_dbt.{m}")).scalar() for m in MODELS}
        engine.dispose()
        print(f"{args.members} members, {args.departments} departments, {args.moves} moved")
        print(f"dbt build: {build:.1f} s; dbt source freshness: {freshness:.1f} s")
        for model, count in counts.items():
            print(f"  {model:<32} {count:>9,} rows")


if __name__ == "__main__":
    main()
