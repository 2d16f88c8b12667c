"""`make demo-dbt`: the dbt project (include/dbt) on a PostgreSQL the sync DAG loaded, on this machine.

Starts a throwaway PostgreSQL and the WeCom simulator, runs `wecom_directory_sync` once through
`airflow dags test` into the database, then `dbt build` and `dbt source freshness` from .venv-dbt,
prints a few rows of the org chart and the `PG*` variables for `make dbt` in another shell, and keeps
the database until Ctrl-C (`--no-wait`: remove it at once). `make demo` loads SQLite, which
dbt-postgres cannot read.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: tests.support is the project's own

from tests.support.throwaway_postgres import throwaway_postgres  # noqa: E402
from wecom_simulator.org import generate_org  # noqa: E402
from wecom_simulator.testing import running_simulator  # noqa: E402

CORP_ID = "wwdemo0000000001"
HOME = ROOT / "var" / "demo-dbt"
DBT = ROOT / ".venv-dbt" / "bin" / "dbt"


def run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    """Run a step with its output in ``log``; on failure print the log's tail and stop."""
    with log.open("w") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603 (built here)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} failed (log: {log}):\n{log.read_text()[-3000:]}")


def airflow_env(simulator_url: str, secret: str, database_url: str) -> dict[str, str]:
    url = make_url(database_url)
    target = {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username}
    target["schema"] = url.database
    wecom = {"conn_type": "wecom", "host": simulator_url, "login": CORP_ID, "password": secret}
    return os.environ | {
        "AIRFLOW_HOME": str(HOME / "airflow-home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow-home/airflow.db",
        "AIRFLOW__WECOM__STAGING_URI": f"file://{HOME}/staging",
        "AIRFLOW_CONN_WECOM_DEFAULT": json.dumps(wecom),
        "AIRFLOW_CONN_WECOM_TARGET_DB": json.dumps(target),
    }


def dbt_env(database_url: str) -> dict[str, str]:
    url = make_url(database_url)
    return {
        "PGHOST": url.host,
        "PGPORT": str(url.port),
        "PGUSER": url.username,
        "PGDATABASE": url.database,
        "DBT_TARGET_SCHEMA": "wecom_dbt",
    }


def show_org_chart(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT path_names, leader_names, direct_member_count, subtree_member_count"
                " FROM wecom_dbt.wecom_org_departments ORDER BY depth, path_names LIMIT 8"
            )
        ).all()
    engine.dispose()
    print("\nwecom_dbt.wecom_org_departments (first rows):")
    for path, leaders, direct, subtree in rows:
        print(f"  {path:<40} leaders: {leaders or '-':<24} members: {direct} here, {subtree} below")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--departments", type=int, default=40)
    parser.add_argument("--no-wait", action="store_true", help="remove the database when done instead of waiting")
    args = parser.parse_args()
    if not DBT.exists():
        sys.exit(f"{DBT} is missing: run `make dbt-venv`")
    (HOME / "airflow-home").mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    org = generate_org(seed=7, members=args.members, departments=args.departments)
    with throwaway_postgres() as database_url, running_simulator(org, corp_id=CORP_ID, secret=secret) as sim:
        env = airflow_env(sim.base_url, secret, database_url)
        print(f"== PostgreSQL {make_url(database_url).render_as_string()}, simulator {sim.base_url}")
        print(f"== airflow dags test wecom_directory_sync (logs in {HOME})")
        run([sys.executable, "-m", "airflow", "db", "migrate"], env, HOME / "migrate.log")
        run(
            [sys.executable, "-m", "airflow", "dags", "test", "wecom_directory_sync", "--conf", '{"force": true}'],
            env,
            HOME / "dag-run.log",
        )
        pg = dbt_env(database_url)
        dbt = os.environ | pg | {"DBT_PROJECT_DIR": str(ROOT / "include" / "dbt")}
        dbt |= {"DBT_PROFILES_DIR": dbt["DBT_PROJECT_DIR"], "DBT_TARGET_PATH": str(HOME / "dbt-target")}
        dbt |= {"DBT_LOG_PATH": str(HOME / "dbt-logs")}
        for step in (["build"], ["source", "freshness"]):
            print(f"== dbt {' '.join(step)}")
            run([str(DBT), *step], dbt, HOME / f"dbt-{'-'.join(step)}.log")
            print("   " + (HOME / f"dbt-{'-'.join(step)}.log").read_text().strip().splitlines()[-1].split("  ")[-1])
        show_org_chart(database_url)
        if args.no_wait:
            return
        print("\nIn another shell, until Ctrl-C here:")
        print(f"  export {' '.join(f'{k}={v}' for k, v in pg.items())}")
        print("  make dbt DBT_ARGS=\"build --select wecom_members_as_of --vars '{wecom_as_of: 2026-01-01}'\"")
        print("  psql -c 'SELECT * FROM wecom_dbt.wecom_org_chart LIMIT 5'")
        try:
            signal.pause()
        except KeyboardInterrupt:
            print("\nstopping PostgreSQL")


if __name__ == "__main__":
    main()
