"""Print what the demo run landed in the SQLite target: the run row, table counts, tags and custom fields."""

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
    "wecom_tags",
    "wecom_tag_users",
    "wecom_tag_departments",
    "wecom_user_attributes",
)


def main(path: str) -> None:
    db = sqlite3.connect(path)
    run = db.execute(
        "SELECT run_id, status, strategy, api_calls, observed_at, users_inserted, departments_inserted,"
        " tags_inserted, tag_members_inserted, message"
        " FROM wecom_sync_runs WHERE kind = 'full' ORDER BY finished_at DESC LIMIT 1"
    ).fetchone()
    if run is None:
        sys.exit(f"no sync run recorded in {path}")
    run_id, status, strategy, api_calls, observed_at, users, departments, tags, tag_members, message = run
    print(f"\nrun {run_id}: {status} (strategy {strategy}, {api_calls} API calls, observed {observed_at})")
    inserted = f"inserted {users} members, {departments} departments, {tags} tags ({tag_members} tag memberships)"
    print(inserted + (f"; {message}" if message else ""))
    for table in TABLES:
        print(f"  {table:<28} {db.execute(f'SELECT COUNT(*) FROM {table}').fetchone()[0]:>8} rows")
    deepest = db.execute("SELECT path, name FROM wecom_departments ORDER BY depth DESC LIMIT 1").fetchone()
    print(f"deepest department: {deepest[1]} at {deepest[0]}")
    print("tags, with how many members hold each (directly or through a department's subtree):")
    holders = db.execute(
        "SELECT t.tag_id, t.tag_name, COUNT(DISTINCT e.userid) FROM wecom_tags t"
        " LEFT JOIN wecom_tag_members_expanded e ON e.corp_id = t.corp_id AND e.tag_id = t.tag_id"
        " WHERE NOT t.is_deleted GROUP BY t.tag_id, t.tag_name ORDER BY t.tag_id"
    )
    for tag_id, name, count in holders:
        print(f"  {tag_id:>4} {name:<16} {count:>6} members")
    print("custom fields (wecom_user_attributes), members with a value:")
    fields = db.execute(
        "SELECT attr_name, attr_type, COUNT(text_value) + COUNT(web_url) + COUNT(miniprogram_title)"
        " FROM wecom_user_attributes GROUP BY attr_name, attr_type ORDER BY attr_name"
    )
    for name, kind, count in fields:
        print(f"  {name:<16} {kind:<12} {count:>6}")
    print(f"\nquery it: sqlite3 {path} 'SELECT userid, name, main_department_id FROM wecom_users LIMIT 5'")
    fields_sql = "SELECT userid, text_value FROM wecom_user_attributes WHERE attr_name = '工号' LIMIT 5"
    print(f'          sqlite3 {path} "{fields_sql}"')


if __name__ == "__main__":
    main(sys.argv[1])
