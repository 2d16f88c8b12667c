"""The directory tables and their columns, written once.

The transform's dtypes (``wecom.directory.transform.TABLE_DTYPES``), the SQL files'
column lists (``$USERS_VALUES`` and friends, filled by ``wecom.store.sql``), and the
tables' Airflow assets and lineage schemas (``wecom.datasets``) are all read from
here, so a new member field is one line in this file plus its DDL
(``include/sql/schema/``), which a test checks against this spec, and a new table is
one entry here. A leaf module: standard library only, cheap to import anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HISTORY_SUFFIX = "_history"
# Columns every write maintains beside a snapshot's content, with their logical types.
_LIFECYCLE = {
    "is_deleted": "boolean",
    "out_of_scope": "boolean",
    "first_seen_at": "timestamp",
    "last_seen_at": "timestamp",
    "deleted_at": "timestamp",
    "updated_at": "timestamp",
    "observed_at": "timestamp",
}
# Tags are read company-wide (only their memberships are scoped): they are never out of the scope.
_TAG_LIFECYCLE = {column: kind for column, kind in _LIFECYCLE.items() if column != "out_of_scope"}
# What an SCD-2 history table adds to its table's content columns.
HISTORY_COLUMNS = {
    "valid_from": "timestamp",
    "valid_to": "timestamp",
    "ended_by": "string",
    "change_source": "string",
    "run_id": "string",
}


@dataclass(frozen=True)
class TableSpec:
    """A table's content: its key columns and every column a snapshot fills, with its pandas dtype;
    the bookkeeping columns its writes maintain (logical types); whether ``<table>_history``
    versions it."""

    key: tuple[str, ...]
    dtypes: dict[str, str]
    bookkeeping: dict[str, str] = field(default_factory=dict)
    history: bool = False

    @property
    def values(self) -> list[str]:
        """The content columns that are neither key, company nor row hash: what a change can alter."""
        return [c for c in self.dtypes if c not in self.key and c not in ("corp_id", "row_hash")]


# Text is pandas ``string`` (NA is pd.NA), ids ``int64``, other numbers ``Int64``, flags ``boolean``.
TABLES: dict[str, TableSpec] = {
    "wecom_departments": TableSpec(
        key=("corp_id", "department_id"),
        dtypes={
            "corp_id": "string",
            "department_id": "int64",
            "name": "string",
            "name_en": "string",
            "parent_id": "int64",
            "sort_order": "Int64",
            "path": "string",
            "depth": "Int64",
            "row_hash": "string",
        },
        bookkeeping=_LIFECYCLE,
        history=True,
    ),
    "wecom_users": TableSpec(
        key=("corp_id", "userid"),
        dtypes={
            "corp_id": "string",
            "userid": "string",
            "name": "string",
            "alias": "string",
            "position": "string",
            "gender": "Int64",
            "mobile": "string",
            "email": "string",
            "biz_mail": "string",
            "telephone": "string",
            "address": "string",
            "status": "Int64",
            "main_department_id": "Int64",
            "avatar_url": "string",
            "open_userid": "string",
            "external_position": "string",
            "extattr": "string",
            "row_hash": "string",
        },
        bookkeeping=_LIFECYCLE,
        history=True,
    ),
    "wecom_user_departments": TableSpec(
        key=("corp_id", "userid", "department_id"),
        dtypes={
            "corp_id": "string",
            "userid": "string",
            "department_id": "int64",
            "sort_order": "Int64",
            "is_leader": "boolean",
            "is_main": "boolean",
            "row_hash": "string",
        },
        bookkeeping={"updated_at": "timestamp"},
        history=True,
    ),
    "wecom_department_leaders": TableSpec(
        key=("corp_id", "department_id", "userid"),
        dtypes={"corp_id": "string", "department_id": "int64", "userid": "string"},
    ),
    "wecom_user_direct_leaders": TableSpec(
        key=("corp_id", "userid", "leader_userid"),
        dtypes={"corp_id": "string", "userid": "string", "leader_userid": "string"},
    ),
    "wecom_department_closure": TableSpec(
        key=("corp_id", "ancestor_id", "descendant_id"),
        dtypes={"corp_id": "string", "ancestor_id": "int64", "descendant_id": "int64", "distance": "int64"},
    ),
    "wecom_tags": TableSpec(
        key=("corp_id", "tag_id"),
        dtypes={"corp_id": "string", "tag_id": "int64", "tag_name": "string", "row_hash": "string"},
        bookkeeping=_TAG_LIFECYCLE,
        history=True,
    ),
    "wecom_tag_users": TableSpec(
        key=("corp_id", "tag_id", "userid"),
        dtypes={"corp_id": "string", "tag_id": "int64", "userid": "string", "row_hash": "string"},
        bookkeeping={"updated_at": "timestamp"},
        history=True,
    ),
    "wecom_tag_departments": TableSpec(
        key=("corp_id", "tag_id", "department_id"),
        dtypes={"corp_id": "string", "tag_id": "int64", "department_id": "int64", "row_hash": "string"},
        bookkeeping={"updated_at": "timestamp"},
        history=True,
    ),
    "wecom_user_attributes": TableSpec(
        key=("corp_id", "userid", "attr_name"),
        dtypes={
            "corp_id": "string",
            "userid": "string",
            "attr_name": "string",
            "attr_type": "string",
            "text_value": "string",
            "web_url": "string",
            "web_title": "string",
            "miniprogram_appid": "string",
            "miniprogram_pagepath": "string",
            "miniprogram_title": "string",
            "row_hash": "string",
        },
        bookkeeping={"updated_at": "timestamp"},
        history=True,
    ),
}

# SQL token prefix -> table: ``$USERS_VALUES`` is ``name, alias, ...``, ``$USERS_FROM_EXCLUDED`` is
# ``name = excluded.name, ...``, ``$USERS_BINDS`` is ``:name, ...``, ``$USERS_FROM_BINDS`` is ``name = :name, ...``.
SQL_FAMILIES = {
    "USERS": "wecom_users",
    "DEPARTMENTS": "wecom_departments",
    "MEMBERSHIPS": "wecom_user_departments",
    "TAGS": "wecom_tags",
    "ATTRIBUTES": "wecom_user_attributes",
}


def column_tokens() -> dict[str, str]:
    """The column-list tokens the SQL files use, from ``TABLES``."""
    tokens = {}
    for prefix, table in SQL_FAMILIES.items():
        values = TABLES[table].values
        tokens[f"{prefix}_VALUES"] = ", ".join(values)
        tokens[f"{prefix}_BINDS"] = ", ".join(f":{c}" for c in values)
        tokens[f"{prefix}_FROM_EXCLUDED"] = ", ".join(f"{c} = excluded.{c}" for c in values)
        tokens[f"{prefix}_FROM_BINDS"] = ", ".join(f"{c} = :{c}" for c in values)
    return tokens


def history_table(table: str) -> str:
    return table + HISTORY_SUFFIX


def directory_tables() -> dict[str, dict[str, str]]:
    """Every directory table a sync writes, each current table followed by its history, with all its
    columns and their types: what ``wecom.datasets`` turns into assets and lineage schemas."""
    tables: dict[str, dict[str, str]] = {}
    for name, spec in TABLES.items():
        tables[name] = spec.dtypes | spec.bookkeeping
        if spec.history:
            tables[history_table(name)] = spec.dtypes | HISTORY_COLUMNS
    return tables
