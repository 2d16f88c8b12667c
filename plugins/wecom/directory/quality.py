"""Pre-load checks on a normalized snapshot: refuse what the loader would store wrongly.

Each check returns problems as sentences naming the offending ids (at most
``MAX_IDS`` each, then "and N more"), so one failed run tells an operator
everything to fix, not just the first thing. ``check_snapshot`` raises them
together; nothing is loaded.

Chunked users: run ``check_memberships`` on each chunk and ``check_userids``
once on all chunks' userid columns together, since two userids that WeCom
treats as one (case-insensitively) may land in different chunks.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from wecom.directory.transform import Snapshot
from wecom.errors import QualityCheckError

MAX_IDS = 20


def check_snapshot(snapshot: Snapshot, tops: Collection[int] = ()) -> None:
    """Raise ``QualityCheckError`` with every problem of ``snapshot``; return quietly if it has none.

    ``tops``: a department scope's top departments, whose parents are outside the snapshot by design."""
    problems = check_departments(snapshot.departments, tops) + check_users(
        snapshot.users, snapshot.user_departments, snapshot.departments["department_id"]
    )
    problems += check_tags(snapshot.tags)
    if problems:
        raise QualityCheckError(problems)


def check_departments(departments: pd.DataFrame, tops: Collection[int] = ()) -> list[str]:
    """Duplicate ids, unknown parents (other than the scope's ``tops``') and cycles in the department tree."""
    problems = []
    ids = departments["department_id"]
    duplicated = ids[ids.duplicated()].sort_values()
    if not duplicated.empty:
        problems.append(f"department_id in more than one row, with conflicting content: {_ids(duplicated)}")
    tree = departments.drop_duplicates("department_id").sort_values("department_id")
    orphans = tree[
        tree["parent_id"].ne(0)
        & ~tree["parent_id"].isin(tree["department_id"])
        & ~tree["department_id"].isin(list(tops))
    ]
    if not orphans.empty:
        labels = orphans["department_id"].astype(str) + " (parent " + orphans["parent_id"].astype(str) + ")"
        problems.append(f"departments whose parent is unknown: {_ids(labels)}")
    cycle = _on_cycles(tree["department_id"], tree["parent_id"])
    if not cycle.empty:
        problems.append(f"the department tree has a cycle through departments: {_ids(cycle)}")
    return problems


def check_users(users: pd.DataFrame, user_departments: pd.DataFrame, department_ids: pd.Index | pd.Series) -> list[str]:
    """Userid clashes and bad memberships of one set of users (the whole snapshot or one chunk)."""
    return check_userids(users["userid"]) + check_memberships(user_departments, department_ids)


def check_userids(userids: pd.Series) -> list[str]:
    """Userids WeCom treats as one member, since it compares them case-insensitively."""
    ids = pd.DataFrame({"folded": userids.str.lower(), "userid": userids})
    clashing = ids[ids["folded"].duplicated(keep=False)].sort_values(["folded", "userid"])
    if clashing.empty:
        return []
    return [f"userids that WeCom treats as one (case-insensitive): {_ids(clashing['userid'])}"]


def check_memberships(user_departments: pd.DataFrame, department_ids: pd.Index | pd.Series) -> list[str]:
    """Duplicate (userid, department_id) rows and members of departments the snapshot does not have."""
    problems = []
    pairs = user_departments[["userid", "department_id"]].sort_values(["userid", "department_id"])
    duplicated = pairs[pairs.duplicated()]
    if not duplicated.empty:
        problems.append(f"duplicate memberships (userid in department_id): {_ids(_pair_labels(duplicated))}")
    unknown = pairs[~pairs["department_id"].isin(department_ids)]
    if not unknown.empty:
        problems.append(f"members of unknown departments (userid in department_id): {_ids(_pair_labels(unknown))}")
    return problems


def check_tags(tags: pd.DataFrame) -> list[str]:
    """A tag listed twice with different names. Tag members the member list lacks are no problem: a member
    created during the walk, kept as the tag says (``wecom.directory.tags``)."""
    ids = tags["tag_id"]
    duplicated = ids[ids.duplicated()].sort_values()
    return [f"tag_id in more than one row, with conflicting content: {_ids(duplicated)}"] if len(duplicated) else []


def _pair_labels(pairs: pd.DataFrame) -> pd.Series:
    return pairs["userid"].astype(str) + " in " + pairs["department_id"].astype(str)


def _ids(values: pd.Series) -> str:
    """The distinct values in their given order, at most ``MAX_IDS`` of them."""
    distinct = values.drop_duplicates().astype(str).tolist()
    listed = ", ".join(distinct[:MAX_IDS])
    return listed if len(distinct) <= MAX_IDS else f"{listed} and {len(distinct) - MAX_IDS} more"


def _on_cycles(ids: pd.Series, parent_ids: pd.Series) -> pd.Series:
    """Ids on a parent cycle, sorted, found by pointer doubling.

    After k squarings of the parent map each department points 2**k steps up
    (chains that leave the known departments stop at a sentinel). Once 2**k
    exceeds the department count, every pointer that has not stopped lies on a
    cycle, and together they cover each cycle: log2(n) vectorized steps, which
    cannot hang however the parents are tangled.
    """
    index = pd.Index(ids)
    n = len(index)
    up = index.get_indexer(parent_ids)
    up = np.append(np.where(up < 0, n, up), n)
    for _ in range(n.bit_length()):
        up = up[up]
    return pd.Series(index[np.unique(up[up < n])])
