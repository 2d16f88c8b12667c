"""The naive reference: a directory sync written the way directory syncers usually are.

    .venv/bin/python -m bench.naive_sync --url SIMULATOR_URL --db-url sqlite:///naive.db

One call at a time (gettoken, department/list, then user/list for each department in turn),
every member kept in memory, then one upsert per department, member and membership in one
transaction: no concurrency, no bulk path, no diff. The benchmarks run it against the same
simulator and the same kind of database as our sync and print the ratio. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import requests
from sqlalchemy import create_engine, text

CORP_ID = "wwbench0000000001"
SECRET = "bench-secret"

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS naive_departments (id BIGINT PRIMARY KEY, name TEXT, parentid BIGINT, sort BIGINT)",
    "CREATE TABLE IF NOT EXISTS naive_users (userid TEXT PRIMARY KEY, name TEXT, position TEXT, mobile TEXT, "
    "email TEXT, status BIGINT, main_department BIGINT, extattr TEXT)",
    "CREATE TABLE IF NOT EXISTS naive_user_departments (userid TEXT, department_id BIGINT, "
    "PRIMARY KEY (userid, department_id))",
)
UPSERTS = {
    "departments": "INSERT INTO naive_departments VALUES (:id, :name, :parentid, :order) ON CONFLICT (id) DO UPDATE "
    "SET name = excluded.name, parentid = excluded.parentid, sort = excluded.sort",
    "users": "INSERT INTO naive_users VALUES (:userid, :name, :position, :mobile, :email, :status, "
    ":main_department, :extattr) ON CONFLICT (userid) DO UPDATE SET name = excluded.name, "
    "position = excluded.position, mobile = excluded.mobile, email = excluded.email, status = excluded.status, "
    "main_department = excluded.main_department, extattr = excluded.extattr",
    "memberships": "INSERT INTO naive_user_departments VALUES (:userid, :department_id) ON CONFLICT DO NOTHING",
}


def run_naive(url: str, db_url: str, corp_id: str = CORP_ID, secret: str = SECRET) -> dict[str, Any]:
    """One naive sync; returns its phases, counts and peak memory (this process's)."""
    session = requests.Session()
    calls: dict[str, int] = {}

    def call(endpoint: str, **params: Any) -> dict[str, Any]:
        calls[endpoint] = calls.get(endpoint, 0) + 1
        body = session.get(f"{url}/cgi-bin/{endpoint}", params=params, timeout=60).json()
        if body.get("errcode"):
            raise RuntimeError(f"{endpoint} answered errcode {body['errcode']}")
        return body

    started = time.perf_counter()
    token = call("gettoken", corpid=corp_id, corpsecret=secret)["access_token"]
    departments = call("department/list", access_token=token)["department"]
    users: dict[str, dict[str, Any]] = {}
    for department in departments:
        for user in call("user/list", access_token=token, department_id=department["id"])["userlist"]:
            users[user["userid"]] = user
    extract_s = time.perf_counter() - started
    mark = time.perf_counter()
    engine = create_engine(db_url)
    rows = 0
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.execute(text(statement))
        for department in departments:
            conn.execute(text(UPSERTS["departments"]), department)
            rows += 1
        for user in users.values():
            conn.execute(
                text(UPSERTS["users"]),
                {
                    **{key: user.get(key) for key in ("userid", "name", "position", "mobile", "email", "status")},
                    "main_department": user.get("main_department"),
                    "extattr": json.dumps(user.get("extattr"), ensure_ascii=False),
                },
            )
            rows += 1
            for department_id in user.get("department", []):
                conn.execute(text(UPSERTS["memberships"]), {"userid": user["userid"], "department_id": department_id})
                rows += 1
    engine.dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "strategy": "naive",
        "strategy_reason": "sequential user/list per department, one upsert per row",
        "members": len(users),
        "departments": len(departments),
        "api_calls": calls,
        "phases": {"extract": extract_s, "load": time.perf_counter() - mark},
        "wall": time.perf_counter() - started,
        "rows_staged": rows,
        "rows_written": rows,
        "status": "success",
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.naive_sync", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the simulator's base URL")
    parser.add_argument("--db-url", required=True, help="a SQLAlchemy URL for the naive tables")
    parser.add_argument("--corp-id", default=CORP_ID)
    parser.add_argument("--secret", default=SECRET)
    args = parser.parse_args()
    print(json.dumps(run_naive(args.url, args.db_url, args.corp_id, args.secret)))


if __name__ == "__main__":
    main()
