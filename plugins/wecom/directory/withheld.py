"""Absent is not empty: what a WeCom answer left out, and the stored values that stand in for it.

Since 2022 WeCom withholds fields by the rights of the caller (apps created after
2022-06-20 get no contact fields, contact-sync IPs added after 2022-08-15 get the
id lists only), and some tenants never send some fields. A field an answer lacks
says nothing about its value, so a snapshot keeps the stored value there and
writes no history version for it; only a field present with an empty value
clears one.

The transform marks each row with a ``withheld`` bitmask (bit *i* set: the
answer lacked ``WITHHOLDABLE[table]``'s *i*-th entry); the loader reads the
stored rows and fills those columns from them (``fill_withheld``) before it
diffs. Entries that are link sets (a member's memberships and direct leaders, a
department's leaders, a tag's members and departments) keep their stored rows whole
(``withheld_owners``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from wecom.directory.transform import TABLE_DTYPES, TABLE_KEYS, USER_FIELDS, row_hash

WITHHELD = "withheld"

# Per table, in bit order: each column or link set a payload may leave out, and the payload field behind it.
WITHHOLDABLE: dict[str, dict[str, str]] = {
    "wecom_users": {**USER_FIELDS, "memberships": "department", "direct_leaders": "direct_leader"},
    "wecom_user_departments": {"sort_order": "order", "is_leader": "is_leader_in_dept", "is_main": "main_department"},
    "wecom_departments": {"name": "name", "name_en": "name_en", "sort_order": "order", "leaders": "department_leader"},
    "wecom_tags": {"tag_name": "tagname", "tag_users": "userlist", "tag_departments": "partylist"},
}
# Link set -> (the owner table whose bit says it was withheld, the link table, the owner's key column).
LINK_SETS: dict[str, tuple[str, str, str]] = {
    "memberships": ("wecom_users", "wecom_user_departments", "userid"),
    "direct_leaders": ("wecom_users", "wecom_user_direct_leaders", "userid"),
    "leaders": ("wecom_departments", "wecom_department_leaders", "department_id"),
    "tag_users": ("wecom_tags", "wecom_tag_users", "tag_id"),
    "tag_departments": ("wecom_tags", "wecom_tag_departments", "tag_id"),
}


def bit(table: str, name: str) -> int:
    return 1 << list(WITHHOLDABLE[table]).index(name)


def value_columns(table: str) -> list[str]:
    """The withholdable columns of ``table`` that are stored in it (not link sets)."""
    return [name for name in WITHHOLDABLE[table] if name not in LINK_SETS]


def presence_mask(present: pd.DataFrame, table: str) -> np.ndarray:
    """The ``withheld`` bitmask of each row of ``present`` (one bool column per ``WITHHOLDABLE`` entry)."""
    bits = np.zeros(len(present), dtype=np.int64)
    for position, name in enumerate(WITHHOLDABLE[table]):
        bits |= (~present[name].to_numpy(dtype=bool)).astype(np.int64) << position
    return bits


def withheld_by_key(raw: pd.DataFrame, key: pd.Series, table: str) -> pd.Series:
    """The bitmask per key (userid or department id) over raw records; a field counts as present when any
    record of the key carried it (``list_id`` sends a member once per department, with ids only)."""
    present = (
        pd.DataFrame({name: _present(raw, field) for name, field in WITHHOLDABLE[table].items()}, index=raw.index)
        .groupby(key.to_numpy(), sort=False)
        .any()
    )
    return pd.Series(presence_mask(present, table), index=present.index, name=WITHHELD)


def fill_withheld(frame: pd.DataFrame, stored: pd.DataFrame, table: str) -> pd.DataFrame:
    """``frame`` without its ``withheld`` column, each withheld value taken from the stored row of the same
    key (rows never stored keep NA), and ``row_hash`` recomputed where anything was filled.

    ``stored`` holds the key columns (without ``corp_id``) and ``value_columns(table)`` as read from the
    table; a row whose known values equal the stored ones then hashes as stored, so it is not rewritten
    and gets no history version.
    """
    bits = frame[WITHHELD].to_numpy(dtype=np.int64)
    out = frame.drop(columns=WITHHELD)
    rows = np.flatnonzero(bits)
    if rows.size == 0 or stored.empty:
        return out
    keys = [c for c in TABLE_KEYS[table] if c != "corp_id"]
    dtypes = TABLE_DTYPES[table]
    columns = value_columns(table)
    typed = stored[keys + columns].astype({c: dtypes[c] for c in keys + columns})
    old = out.iloc[rows][keys].merge(typed, on=keys, how="left", indicator=True)
    found = old["_merge"].eq("both").to_numpy()
    positions = list(WITHHOLDABLE[table])
    filled = out.iloc[rows].copy()
    for name in columns:
        take = found & ((bits[rows] >> positions.index(name)) & 1).astype(bool)
        if take.any():
            filled.loc[filled.index[take], name] = old[name].to_numpy()[take]
    filled["row_hash"] = row_hash(filled, table)
    out.iloc[rows] = filled
    return out


def withheld_owners(frame: pd.DataFrame, link_set: str) -> pd.Series:
    """Keys of the owners in ``frame`` (a chunk of the owner table) whose ``link_set`` was withheld."""
    owner_table, _, key = LINK_SETS[link_set]
    withheld = (frame[WITHHELD].to_numpy(dtype=np.int64) & bit(owner_table, link_set)) != 0
    return frame.loc[withheld, key]


def carried_links(stored: pd.DataFrame, owners: Iterable[object], link_set: str) -> pd.DataFrame:
    """The stored link rows of ``owners``, kept whole because their answers withheld the set."""
    _, link_table, key = LINK_SETS[link_set]
    rows = stored[stored[key].isin(list(owners))]
    return rows.astype({c: t for c, t in TABLE_DTYPES[link_table].items() if c in rows.columns})


def _present(raw: pd.DataFrame, field: str) -> pd.Series:
    if field not in raw.columns:
        return pd.Series(False, index=raw.index)
    return raw[field].notna()


def mark_users(
    raw: pd.DataFrame, users: pd.DataFrame, memberships: pd.DataFrame, leaders_withheld: pd.Index
) -> tuple[pd.DataFrame, pd.DataFrame, set[int]]:
    """``transform_users``' members and memberships of one chunk with their ``withheld`` column, and the
    departments in ``leaders_withheld`` (whose payload lacked ``department_leader``) where a member's
    ``is_leader_in_dept`` was withheld too: their leaders are not known from this snapshot."""
    userid = raw["userid"].astype("string")
    users = _attach(users, "userid", withheld_by_key(raw, userid, "wecom_users"))
    memberships = _attach(memberships, "userid", withheld_by_key(raw, userid, "wecom_user_departments"))
    unsure = memberships["department_id"].isin(leaders_withheld) & (
        memberships[WITHHELD].to_numpy() & bit("wecom_user_departments", "is_leader") != 0
    )
    return users, memberships, set(memberships.loc[unsure, "department_id"].tolist())


def mark_departments(raw: pd.DataFrame, departments: pd.DataFrame, leaders_unknown: set[int]) -> pd.DataFrame:
    """Departments with their ``withheld`` column. The ``leaders`` bit stays only where no member said
    either (``leaders_unknown``): elsewhere the leaders derived from members are a full answer."""
    bits = withheld_by_key(raw, pd.to_numeric(raw["id"]).astype("int64"), "wecom_departments")
    marked = _attach(departments, "department_id", bits)
    known = ~marked["department_id"].isin(list(leaders_unknown)).to_numpy()
    marked.loc[known, WITHHELD] &= ~bit("wecom_departments", "leaders")
    return marked


def _attach(frame: pd.DataFrame, key: str, bits: pd.Series) -> pd.DataFrame:
    return frame.assign(**{WITHHELD: frame[key].map(bits).fillna(0).astype("int64")})
