"""The department tree: each department's path and depth, and the closure table, from parent links.

Walked one level at a time with merges (WeCom allows 15 levels), never one department at a time,
so a 30,000-department tree takes a few merges.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import pandas as pd

log = logging.getLogger(__name__)

# WeCom allows 15 levels; the tree walk stops here so malformed data cannot keep it going.
MAX_TREE_LEVELS = 32


def walk_tree(edges: pd.DataFrame, tops: Collection[int] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Path and depth of each department whose chain reaches a root, and the closure links.

    Walks down from the roots, one merge per level: the company's root (``parent_id`` 0) and, for a
    department scope, its ``tops`` whose parent lies outside the tree (paths then start at the
    scope's top departments, depth 0). Each
    department has one parent, so it is reached at most once: departments on
    a cycle or under an unknown parent are never reached (no path), and the
    walk ends after the deepest level.
    """
    top = edges["department_id"].isin(list(tops)) & ~edges["parent_id"].isin(edges["department_id"])
    ids = edges.loc[(edges["parent_id"].eq(0) | top) & edges["department_id"].ne(0), "department_id"]
    level = pd.DataFrame({"department_id": ids, "path": "/" + ids.astype("string") + "/", "depth": 0})
    links = _self_links(ids)
    levels, closure = [], []
    for depth in range(1, MAX_TREE_LEVELS + 1):
        levels.append(level)
        closure.append(links)
        parents = level[["department_id", "path"]].rename(columns={"department_id": "parent_id"})
        children = edges.merge(parents, on="parent_id")
        if children.empty:
            break
        children["path"] = children["path"] + children["department_id"].astype("string") + "/"
        level = children[["department_id", "path"]].assign(depth=depth)
        inherited = links.merge(children, left_on="descendant_id", right_on="parent_id")
        links = pd.concat(
            [
                pd.DataFrame(
                    {
                        "ancestor_id": inherited["ancestor_id"],
                        "descendant_id": inherited["department_id"],
                        "distance": inherited["distance"] + 1,
                    }
                ),
                _self_links(children["department_id"]),
            ]
        )
    else:
        log.warning("department tree deeper than %d levels: deeper departments get no path", MAX_TREE_LEVELS)
    return pd.concat(levels), pd.concat(closure)


def _self_links(ids: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"ancestor_id": ids, "descendant_id": ids, "distance": 0})
