"""Print what the demo run landed in the SQLite target: the run row and table counts."""

from __future__ import annotations

import sqlite3
import sys

TABLES = (
    "wecom_departments",
    "wecom_users",
    "wecom_user_departments",
    "wecom_department_leaders",
    "wecom_user_direct_leaders",
    "wecom_department_closure",
)


def main(path: str) -> None:
    db = sqlite3.connect(path)
    run = db.execute(
        "SELECT run_id, status, strategy, api_calls, observed_at, users_inserted, departments_inserted, message"
        " FROM wecom_sync_runs WHERE kind = 'full' ORDER BY finished_at DESC LIMIT 1"
    ).fetchone()
    if run is None:
        sys.exit(f"no sync run recorded in {path}")
    run_id, status, strategy, api_calls, observed_at, users, departments, message = run
    print(f"\nrun {run_id}: {status} (strategy {strategy}, {api_calls} API calls, observed {observed_at})")
    print(f"inserted {users} members and {departments} departments" + (f"; {message}" if message else ""))
    for table in TABLES:
        print(f"  {table:<28} {db.execute(f'SELECT COUNT(*) FROM {table}').fetchone()[0]:>8} rows")
    deepest = db.execute("SELECT path, name FROM wecom_departments ORDER BY depth DESC LIMIT 1").fetchone()
    print(f"deepest department: {deepest[1]} at {deepest[0]}")
    print(f"\nquery it: sqlite3 {path} 'SELECT userid, name, main_department_id FROM wecom_users LIMIT 5'")


if __name__ == "__main__":
    main(sys.argv[1])
