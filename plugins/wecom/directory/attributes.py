"""Members' custom fields (``extattr``) -> ``wecom_user_attributes``, one row per attribute.

user/get, user/list and export/user send ``extattr: {attrs: [{type, name, text: {value} | web: {url,
title} | miniprogram: {appid, pagepath, title}}]}``; callbacks' ``ExtAttr`` arrive in the same shape
(``wecom.callbacks.fold``). Absent is not empty, per attribute:

- a record without ``extattr`` gives no rows: every stored attribute of the member is kept;
- an attribute the list leaves out gives no row: its stored row is kept;
- an attribute sent with an empty value gives a row whose values are NULL: the value is cleared.

Only a member leaving the company ends its attribute rows (the load's rule). ``wecom_users.extattr``
keeps the JSON of the last answer that carried ``extattr``, for compatibility.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from wecom.directory.transform import _column, _explode_list, _table, _text

log = logging.getLogger(__name__)

ATTR_TYPES = {0: "text", 1: "web", 2: "miniprogram"}
# Column -> (the attribute's object for that type, its field).
_VALUES = {
    "text_value": ("text", "value"),
    "web_url": ("web", "url"),
    "web_title": ("web", "title"),
    "miniprogram_appid": ("miniprogram", "appid"),
    "miniprogram_pagepath": ("miniprogram", "pagepath"),
    "miniprogram_title": ("miniprogram", "title"),
}


def transform_attributes(raw: pd.DataFrame, corp_id: str) -> pd.DataFrame:
    """The attribute rows of one chunk of raw member records (all records of each userid in the chunk).

    Records of one member merge attribute by attribute, the first record naming an attribute
    winning, as member fields do. An attribute without a name cannot be keyed and is skipped.
    """
    raw = raw.reset_index(drop=True)
    attrs = _column(raw, "extattr").map(_attr_list, na_action="ignore")
    exploded = _explode_list(attrs)
    entries: list[Any] = exploded["value"].tolist()
    rows = pd.DataFrame(
        {
            "corp_id": corp_id,
            "userid": _text(_column(raw, "userid")).to_numpy()[exploded["_rec"]],
            "attr_name": [_field(e, "name") for e in entries],
            "attr_type": [_attr_type(e.get("type")) for e in entries],
            **{column: [_nested(e, kind, name) for e in entries] for column, (kind, name) in _VALUES.items()},
        }
    )
    rows = rows.astype({column: "string" for column in rows.columns if column != "corp_id"})
    rows[list(_VALUES)] = rows[list(_VALUES)].replace("", pd.NA)
    named = rows.dropna(subset=["userid", "attr_name"])
    if len(named) < len(rows):
        log.warning("%d custom field entries have no name; skipped", len(rows) - len(named))
    return _table(named.drop_duplicates(["userid", "attr_name"]), "wecom_user_attributes")


def _attr_list(extattr: object) -> list[dict[str, Any]] | None:
    """The attribute objects of an ``extattr`` value; None (withheld) when it is not WeCom's shape."""
    if isinstance(extattr, dict) and isinstance(extattr.get("attrs"), list):
        return [attr for attr in extattr["attrs"] if isinstance(attr, dict)]
    return None


def _attr_type(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return ATTR_TYPES.get(value, str(value))
    return ATTR_TYPES.get(int(value), value) if isinstance(value, str) and value.isdigit() else None


def _field(entry: dict[str, Any], name: str) -> str | None:
    value = entry.get(name)
    return value if isinstance(value, str) and value else None


def _nested(entry: dict[str, Any], kind: str, name: str) -> str | None:
    """``entry[kind][name]``; a text attribute in the older flat form (``{"name", "value"}``) counts too."""
    part = entry.get(kind)
    if isinstance(part, dict):
        return _field(part, name)
    if (kind, name) == ("text", "value") and _attr_type(entry.get("type")) in (None, "text"):
        return _field(entry, "value")
    return None
