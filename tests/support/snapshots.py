"""Hand-made normalized snapshots (the loader's input) for tests of the loader and the example SQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CORP = "wwcorp"


def department(dept_id: int, parent: int, name: str, path: str, depth: int, digest: str) -> dict:
    return {
        "corp_id": CORP,
        "department_id": dept_id,
        "name": name,
        "name_en": None,
        "parent_id": parent,
        "sort_order": 100,
        "path": path,
        "depth": depth,
        "row_hash": digest,
    }


def user(userid: str, name: str, digest: str, main: int = 2) -> dict:
    return {
        "corp_id": CORP,
        "userid": userid,
        "name": name,
        "alias": None,
        "position": "工程师",
        "gender": 1,
        "mobile": None,
        "email": f"{userid}@example.com",
        "biz_mail": None,
        "telephone": None,
        "address": None,
        "status": 1,
        "main_department_id": main,
        "avatar_url": None,
        "open_userid": None,
        "external_position": None,
        "extattr": '{"attrs":[]}',
        "row_hash": digest,
    }


def membership(userid: str, dept: int, main: bool = True) -> dict:
    return {
        "corp_id": CORP,
        "userid": userid,
        "department_id": dept,
        "sort_order": 5,
        "is_leader": False,
        "is_main": main,
        "row_hash": f"{userid}-{dept}-{main}",
    }


def closure(ancestor: int, descendant: int, distance: int) -> dict:
    return {"corp_id": CORP, "ancestor_id": ancestor, "descendant_id": descendant, "distance": distance}


def snapshot(users: list[dict], memberships: list[dict], departments: list[dict] | None = None) -> dict:
    departments = departments or [
        department(1, 0, "总部", "/1/", 0, "d1"),
        department(2, 1, "研发", "/1/2/", 1, "d2"),
    ]
    closures = [closure(1, 1, 0), closure(2, 2, 0), closure(1, 2, 1)]
    frames = {
        "wecom_departments": departments,
        "wecom_users": users,
        "wecom_user_departments": memberships,
        "wecom_department_leaders": [{"corp_id": CORP, "department_id": 2, "userid": users[0]["userid"]}],
        "wecom_user_direct_leaders": [],
        "wecom_department_closure": closures,
    }
    return {name: [pd.DataFrame(rows)] if rows else [] for name, rows in frames.items()}


def tag_tables(tags: dict[int, str], users: dict[int, list[str]], departments: dict[int, list[int]]) -> dict:
    """The tag tables' frames of a snapshot: ``tags`` id -> name, and each tag's members and departments."""
    frames = {
        "wecom_tags": [{"corp_id": CORP, "tag_id": t, "tag_name": n, "row_hash": f"t{t}-{n}"} for t, n in tags.items()],
        "wecom_tag_users": [
            {"corp_id": CORP, "tag_id": t, "userid": u, "row_hash": f"{t}:{u}"} for t, us in users.items() for u in us
        ],
        "wecom_tag_departments": [
            {"corp_id": CORP, "tag_id": t, "department_id": d, "row_hash": f"{t}:{d}"}
            for t, ds in departments.items()
            for d in ds
        ],
    }
    return {name: [pd.DataFrame(rows)] if rows else [] for name, rows in frames.items()}
