"""Raw tag records (``tags.jsonl``: tag/list merged with tag/get) -> the tag tables.

One record per tag: ``{tagid, tagname?, userlist?: [{userid, name?}], partylist?: [ids]}``. A list
the record lacks was withheld (refused, or the tag vanished during the walk): the tag then has no
rows here, and its ``withheld`` bits (``mark_tags``) tell the load to keep its stored members.
Member names in ``userlist`` are not stored (``wecom_users.name`` comes from the member
endpoints), so an answer without them changes nothing. Members and departments are kept even
when the member or department lists do not contain them (created during the walk): nothing a tag
says is dropped here. A department scope narrows the staged records before they get here
(``wecom.api.scope_walk.ScopeFilter.tag``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from wecom.directory.transform import _column, _explode_list, _reject_records_without_ids, _table, _text
from wecom.directory.withheld import WITHHELD, withheld_by_key


@dataclass(frozen=True)
class TagTables:
    """The three tag tables of one snapshot, each shaped as ``wecom.tables`` says."""

    tags: pd.DataFrame
    tag_users: pd.DataFrame
    tag_departments: pd.DataFrame


def transform_tags(raw: pd.DataFrame, corp_id: str) -> TagTables:
    """The tag tables from raw tag records (as ``read_json_lines`` reads ``tags.jsonl``).

    Duplicate members or departments of one tag collapse; a tag listed twice keeps both rows, for
    the quality checks to report.
    """
    records, raw = raw.index, raw.reset_index(drop=True)
    tag_id = pd.to_numeric(_column(raw, "tagid"), errors="coerce")
    _reject_records_without_ids(tag_id.isna(), records, "tag", "a numeric tagid")
    tag_id = tag_id.astype("int64")
    tags = pd.DataFrame({"corp_id": corp_id, "tag_id": tag_id, "tag_name": _text(_column(raw, "tagname"))})
    listed = _explode_list(_column(raw, "userlist"))
    userids = [entry.get("userid") if isinstance(entry, dict) else None for entry in listed["value"]]
    users = pd.DataFrame(
        {"corp_id": corp_id, "tag_id": tag_id.to_numpy()[listed["_rec"]], "userid": _text(pd.Series(userids))}
    )
    parties = _explode_list(_column(raw, "partylist"))
    departments = pd.DataFrame(
        {
            "corp_id": corp_id,
            "tag_id": tag_id.to_numpy()[parties["_rec"]],
            "department_id": pd.to_numeric(parties["value"], errors="coerce"),
        }
    )
    return TagTables(
        _table(tags.drop_duplicates(), "wecom_tags"),
        _table(users.dropna().drop_duplicates(), "wecom_tag_users"),
        _table(departments.dropna().drop_duplicates(), "wecom_tag_departments"),
    )


def mark_tags(raw: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    """``tags`` with their ``withheld`` bitmask: which of name, members and departments the answers lacked."""
    if raw.empty:
        return tags.assign(**{WITHHELD: pd.Series(0, index=tags.index, dtype="int64")})
    bits = withheld_by_key(raw, pd.to_numeric(raw["tagid"]).astype("int64"), "wecom_tags")
    return tags.assign(**{WITHHELD: tags["tag_id"].map(bits).fillna(0).astype("int64")})


class Unlisted:
    """Tag members and departments that the member and department lists did not contain: created during
    the walk (or outside what the member walk read). They are kept; this only says how many, for the run."""

    def __init__(self, tables: TagTables) -> None:
        self.users = set(tables.tag_users["userid"].tolist())
        self.departments = set(tables.tag_departments["department_id"].tolist())

    def listed(self, userids: Iterable[str] = (), department_ids: Iterable[int] = ()) -> None:
        self.users.difference_update(userids)
        self.departments.difference_update(department_ids)

    def notes(self) -> list[str]:
        notes = []
        if self.users:
            notes.append(f"{len(self.users)} tag members are not in the member list (joined during the walk?): kept")
        if self.departments:
            ids = ", ".join(map(str, sorted(self.departments)[:10]))
            notes.append(f"tags name departments the department list lacks ({ids}): kept")
        return notes
