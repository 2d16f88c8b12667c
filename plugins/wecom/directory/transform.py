"""Raw WeCom payloads -> the normalized tables the loader merges.

Pure pandas, no Airflow, so it runs and is tested anywhere. Every step is
vectorized (explode, merge, groupby): a 100,000-member directory transforms in
seconds, and the department tree is walked one level at a time (WeCom allows
15), never one department at a time.

Conventions shared by every table:

- A field WeCom withheld is NA, never ``""``. Since 2022 restricted apps and
  IPs receive fewer fields (or only ids), and WeCom also sends ``""`` for unset
  values; both mean "no value", and an empty string in the database would
  claim one.
- dtypes: text ``string`` (NA is ``pd.NA``), ids ``int64``, other numbers
  ``Int64``, flags ``boolean``; see ``wecom.tables``, the one definition of the columns.
- Rows are sorted by ``TABLE_KEYS``, so a rerun on the same payloads writes
  identical files.
- ``row_hash`` is 16 hex digits over every column except ``corp_id``, so the
  loader can skip rows that did not change.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd

from wecom.directory.pii import KEEP_ALL, PiiPolicy
from wecom.directory.tree import walk_tree
from wecom.errors import DataContractError
from wecom.tables import TABLES

log = logging.getLogger(__name__)

# Bump when the same raw payloads start to transform into different rows (a new column, a new
# rule): a re-sync whose payloads match the last snapshot's skips transform and load only while
# this matches too (``pipeline.snapshot_digest``).
TRANSFORM_VERSION = 2  # 2: tags and custom fields (wecom_user_attributes)
# Staged lines a failed contract names, at most.
MAX_LINES = 20


TABLE_DTYPES: dict[str, dict[str, str]] = {table: dict(spec.dtypes) for table, spec in TABLES.items()}
TABLE_COLUMNS: dict[str, list[str]] = {table: list(dtypes) for table, dtypes in TABLE_DTYPES.items()}
TABLE_KEYS: dict[str, list[str]] = {table: list(spec.key) for table, spec in TABLES.items()}

# Output column -> payload field, by kind of normalization.
_USER_TEXT = {
    "name": "name",
    "alias": "alias",
    "position": "position",
    "mobile": "mobile",
    "email": "email",
    "biz_mail": "biz_mail",
    "telephone": "telephone",
    "address": "address",
    "avatar_url": "avatar",
    "open_userid": "open_userid",
    "external_position": "external_position",
}
_USER_NUMBERS = {"gender": "gender", "status": "status", "main_department_id": "main_department"}
# Every wecom_users column that a payload field fills, with that field.
USER_FIELDS: dict[str, str] = {**_USER_TEXT, **_USER_NUMBERS, "extattr": "extattr"}
# Membership column -> payload list aligned by position with ``department``.
_ALIGNED_WITH_DEPARTMENT = {"sort_order": "order", "is_leader": "is_leader_in_dept"}


def _extattr_json(value: object) -> str:
    """Compact JSON with sorted keys and Chinese kept (what ``json.dumps`` with those options gives,
    five times faster: it runs once per member)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)


def empty_table(table: str) -> pd.DataFrame:
    """``table`` without rows, with its columns and dtypes."""
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in TABLE_DTYPES[table].items()})


@dataclass(frozen=True)
class Snapshot:
    """One corp's directory as normalized tables, each shaped as ``TABLE_COLUMNS`` says.

    Tags (``wecom.directory.tags``) and custom fields (``wecom.directory.attributes``) are
    transformed by their own modules; a snapshot built without them has none.
    """

    departments: pd.DataFrame
    users: pd.DataFrame
    user_departments: pd.DataFrame
    department_leaders: pd.DataFrame
    user_direct_leaders: pd.DataFrame
    department_closure: pd.DataFrame
    tags: pd.DataFrame = dataclasses.field(default_factory=lambda: empty_table("wecom_tags"))
    tag_users: pd.DataFrame = dataclasses.field(default_factory=lambda: empty_table("wecom_tag_users"))
    tag_departments: pd.DataFrame = dataclasses.field(default_factory=lambda: empty_table("wecom_tag_departments"))
    user_attributes: pd.DataFrame = dataclasses.field(default_factory=lambda: empty_table("wecom_user_attributes"))


def transform(
    raw_departments: pd.DataFrame,
    raw_users: pd.DataFrame,
    corp_id: str,
    pii: PiiPolicy = KEEP_ALL,
    tops: Collection[int] = (),
) -> Snapshot:
    """The whole snapshot from the raw frames (as ``pd.read_json(path, lines=True, dtype=False)`` reads them).

    Department leaders come from the department payload's ``department_leader``,
    the documented list; only for departments whose payload withheld it
    (``simplelist``, restricted IPs) are they derived from the members'
    ``is_leader_in_dept``.
    """
    departments, payload_leaders, closure = transform_departments(raw_departments, corp_id, tops)
    users, user_departments, direct_leaders = transform_users(raw_users, corp_id, pii)
    member_leaders = department_leaders_from_members(user_departments, withheld_leader_departments(raw_departments))
    return Snapshot(
        departments=departments,
        users=users,
        user_departments=user_departments,
        department_leaders=_table(pd.concat([payload_leaders, member_leaders]), "wecom_department_leaders"),
        user_direct_leaders=direct_leaders,
        department_closure=closure,
    )


def transform_departments(
    raw: pd.DataFrame, corp_id: str, tops: Collection[int] = ()
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Departments (with path and depth), their payload leaders, and the tree's closure.

    ``tops``: a department scope's top departments, whose parents are outside it; the paths start
    there (``wecom.directory.tree.walk_tree``).

    Exact duplicates (overlapping list calls) collapse; two records of one id
    that differ are both kept, for the quality checks to report rather than
    for this step to guess which is right.
    """
    records, raw = raw.index, raw.reset_index(drop=True)
    department_id = pd.to_numeric(_column(raw, "id"), errors="coerce")
    parent_id = pd.to_numeric(_column(raw, "parentid"), errors="coerce")
    missing = department_id.isna() | parent_id.isna()
    _reject_records_without_ids(missing, records, "department", "a numeric id and parentid")
    rows = pd.DataFrame(
        {
            "corp_id": corp_id,
            "department_id": department_id.astype("int64"),
            "name": _text(_column(raw, "name")),
            "name_en": _text(_column(raw, "name_en")),
            "parent_id": parent_id.astype("int64"),
            "sort_order": _number(_column(raw, "order")),
        }
    ).drop_duplicates()
    placed, links = walk_tree(rows.drop_duplicates("department_id")[["department_id", "parent_id"]], tops)
    departments = rows.merge(placed, on="department_id", how="left")

    listed = _explode_list(_column(raw, "department_leader"))
    leaders = pd.DataFrame(
        {
            "corp_id": corp_id,
            "department_id": department_id.to_numpy()[listed["_rec"]],
            "userid": _text(listed["value"]).to_numpy(),
        }
    )
    return (
        _table(departments, "wecom_departments"),
        _table(leaders.dropna().drop_duplicates(), "wecom_department_leaders"),
        _table(links.assign(corp_id=corp_id), "wecom_department_closure"),
    )


def transform_users(
    raw: pd.DataFrame, corp_id: str, pii: PiiPolicy = KEEP_ALL
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Members, memberships and direct leaders; works on any chunk holding all records of its userids.

    A member arrives once per department it sits in, and ``list_id`` sends one
    record per (member, department): records of one userid merge field by
    field, the first non-missing value winning, so an ids-only record never
    blanks a fuller one. Userids are kept as sent; case-insensitive clashes
    are for the quality checks to report.

    ``is_main`` is True only where the payload names the department as
    ``main_department``; without it (restricted payloads) every membership is
    False, meaning "not known to be main": guessing from a member's only
    visible department would be wrong when the others lie outside the scope.

    ``pii`` hashes or drops contact fields before the row hash is taken.
    """
    records, raw = raw.index, raw.reset_index(drop=True)
    userid = _text(_column(raw, "userid"))
    _reject_records_without_ids(userid.isna(), records, "member", "a userid")
    fields = pd.DataFrame(
        {
            "userid": userid,
            **{column: _text(_column(raw, field)) for column, field in _USER_TEXT.items()},
            **{column: _number(_column(raw, field)) for column, field in _USER_NUMBERS.items()},
            "extattr": _column(raw, "extattr"),
            "direct_leader": _column(raw, "direct_leader"),
        }
    )
    users = fields.groupby("userid", sort=False).first().reset_index()
    users["extattr"] = users["extattr"].map(_extattr_json, na_action="ignore")

    listed = _explode_list(users["direct_leader"])
    direct_leaders = pd.DataFrame(
        {
            "corp_id": corp_id,
            "userid": users["userid"].to_numpy()[listed["_rec"]],
            "leader_userid": _text(listed["value"]).to_numpy(),
        }
    )

    memberships = _memberships(raw, userid)
    main_department = memberships["userid"].map(users.set_index("userid")["main_department_id"])
    memberships["is_main"] = main_department.eq(memberships["department_id"]).fillna(False)
    return (
        _table(pii.apply(users.assign(corp_id=corp_id)), "wecom_users"),
        _table(memberships.assign(corp_id=corp_id), "wecom_user_departments"),
        _table(direct_leaders.dropna().drop_duplicates(), "wecom_user_direct_leaders"),
    )


def withheld_leader_departments(raw_departments: pd.DataFrame) -> pd.Index:
    """Ids of departments none of whose records carried ``department_leader``.

    An empty list is an answer ("no leaders"); only an absent one means the
    payload withheld it, so only those departments take leaders from members.
    """
    department_id = pd.to_numeric(_column(raw_departments, "id"), errors="coerce")
    listed = _column(raw_departments, "department_leader").notna()
    return pd.Index(department_id[~listed].dropna()).difference(pd.Index(department_id[listed]))


def department_leaders_from_members(user_departments: pd.DataFrame, department_ids: pd.Index) -> pd.DataFrame:
    """Leaders of ``department_ids`` as the members' ``is_leader_in_dept`` declares them.

    Works per chunk of ``user_departments``; concatenate the results with the
    payload leaders of ``transform_departments``.
    """
    leading = user_departments["is_leader"].fillna(False)
    return _table(
        user_departments[leading & user_departments["department_id"].isin(department_ids)],
        "wecom_department_leaders",
    )


def _memberships(raw: pd.DataFrame, userid: pd.Series) -> pd.DataFrame:
    """One row per (userid, department_id) with the order and leader flag at the same list position.

    A list whose length differs from ``department`` cannot be aligned safely,
    so its values become NA for that record instead of shifting onto the
    wrong departments. Records of one member merge like the member fields.
    """
    rows = _explode_list(_column(raw, "department")).rename(columns={"value": "department_id"})
    for column, field in _ALIGNED_WITH_DEPARTMENT.items():
        values = _explode_list(_column(raw, field)).rename(columns={"value": column, "_len": "_len_value"})
        rows = rows.merge(values, on=["_rec", "_pos"], how="left")
        # _len is constant per record, so this row test is the record test "lists differ in length".
        misaligned = rows["_len_value"].notna() & rows["_len_value"].ne(rows["_len"])
        if misaligned.any():
            log.warning(
                "%d member record(s) have %s of another length than department; set to NULL there",
                rows.loc[misaligned, "_rec"].nunique(),
                field,
            )
        rows[column] = _number(rows[column].mask(misaligned))
        rows = rows.drop(columns="_len_value")
    rows["is_leader"] = rows["is_leader"].eq(1)
    rows["department_id"] = pd.to_numeric(rows["department_id"], errors="coerce")
    rows["userid"] = userid.to_numpy()[rows["_rec"]]
    return (
        rows.dropna(subset=["department_id"])
        .groupby(["userid", "department_id"], sort=False)[list(_ALIGNED_WITH_DEPARTMENT)]
        .first()
        .reset_index()
    )


def _explode_list(values: pd.Series) -> pd.DataFrame:
    """One row per list element: ``_rec`` (row number; ``values`` has a RangeIndex), ``_pos``, ``value``.

    ``_len`` is the record's list length, for aligning parallel lists. Missing
    or empty lists and missing elements give no row.
    """
    exploded = values.explode()
    by_record = exploded.groupby(level=0)
    frame = pd.DataFrame(
        {
            "_rec": exploded.index.to_numpy(),
            "_pos": by_record.cumcount().to_numpy(),
            "_len": by_record.transform("size").to_numpy(),
            "value": exploded.to_numpy(),
        }
    )
    return frame[frame["value"].notna()].reset_index(drop=True)


def _column(raw: pd.DataFrame, field: str) -> pd.Series:
    """``raw[field]``, or all missing: ``read_json`` has no column for a field no record carried."""
    if field in raw.columns:
        return raw[field]
    return pd.Series(None, index=raw.index, dtype=object)


def _text(values: pd.Series) -> pd.Series:
    """Text with WeCom's ``""`` (unset) as NA, like a withheld field."""
    return values.astype("string").replace("", pd.NA)


def _number(values: pd.Series) -> pd.Series:
    """Int64 from ints, floats (a column with gaps) or digit strings (``gender`` is ``"1"``)."""
    return pd.to_numeric(values, errors="coerce").astype("Int64")


def _reject_records_without_ids(missing: pd.Series, records: pd.Index, kind: str, ids: str) -> None:
    """Fail on records without their ids: they cannot be keyed, and dropping them would hide entities.

    Names staged-file line numbers (``records``: the raw frame's index, line numbers from 0 as
    ``iter_json_lines`` gives them), not contents, which may hold personal data.
    """
    if missing.any():
        lines = (records[missing.to_numpy()] + 1).tolist()
        more = f" and {len(lines) - MAX_LINES} more" if len(lines) > MAX_LINES else ""
        raise DataContractError(
            f"every {kind} record carries {ids}",
            f"{len(lines)} {kind} record(s) do not, staged line(s) {', '.join(map(str, lines[:MAX_LINES]))}{more}",
        )


def _table(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """``frame`` as ``table``: its columns, order and dtypes, ``row_hash`` when it has one, sorted by key."""
    dtypes = {column: dtype for column, dtype in TABLE_DTYPES[table].items() if column != "row_hash"}
    out = frame.reindex(columns=list(dtypes)).astype(dtypes)
    if "row_hash" in TABLE_DTYPES[table]:
        out["row_hash"] = row_hash(out, table)
    return out.sort_values(TABLE_KEYS[table], kind="stable", ignore_index=True)


def row_hash(frame: pd.DataFrame, table: str) -> pd.Series:
    """The ``row_hash`` of each row of ``frame`` (typed as ``TABLE_DTYPES`` says): every column but
    ``corp_id`` and the hash itself, so rows rebuilt from stored values hash as they did when stored."""
    columns = [c for c in TABLE_DTYPES[table] if c not in ("corp_id", "row_hash")]
    return _row_hash(frame[columns])


def _row_hash(frame: pd.DataFrame) -> pd.Series:
    """16 hex digits per row that depend only on the row's own values (not on other rows or the chunk).

    The digits are cut from the uint64 hashes with numpy rather than formatted row by row.
    """
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    digits = _HEX_DIGITS[(hashes[:, None] >> _NIBBLE_SHIFTS) & np.uint64(15)]
    return pd.Series(digits.view("S16").ravel().astype(str), index=frame.index, dtype="string")
