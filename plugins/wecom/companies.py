"""The companies to sync: one JSON configuration (the Airflow Variable ``wecom_companies``).

Each company gets its own DAG and its own ``corp_id`` rows in the shared
tables. Each entry is checked on its own (``read_companies``): a broken entry
costs only its own company's DAGs, and its problem, naming the entry and the
key, is what dags/wecom_companies.py raises as an import error.

Example::

    [{"name": "default"},
     {"name": "acme", "wecom_conn_id": "wecom_acme", "schedule": "0 3 * * *",
      "pii": {"mobile": "hash", "address": "drop"}, "max_delete_share": 0.05,
      "scope": {"include": [2], "exclude": [7]}}]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wecom.constants import DEFAULT_WECOM_CONN_ID
from wecom.directory.pii import PiiPolicy
from wecom.errors import CompanyConfigError, PiiConfigError, ScopeConfigError
from wecom.scope import WHOLE_COMPANY, Scope

DEFAULT_DAG_ID = "wecom_directory_sync"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


@dataclass(frozen=True)
class Company:
    """One WeCom company: where its credentials and target are, and how to sync it."""

    name: str = "default"
    wecom_conn_id: str = DEFAULT_WECOM_CONN_ID
    schedule: str | None = "@daily"
    retries: int = 3
    freshness_minutes: float = 60
    max_delete_share: float = 0.10
    max_delete_count: int | None = None
    pii: Mapping[str, str] = field(default_factory=dict)
    pii_salt_variable: str = "wecom_pii_salt"
    # The subtrees the tables hold (``wecom.scope``); the whole company by default.
    scope: Scope = WHOLE_COMPANY

    @property
    def dag_id(self) -> str:
        """``wecom_directory_sync`` for the default company, ``wecom_directory_sync__<name>`` for others."""
        return self.dag_id_for(DEFAULT_DAG_ID)

    def dag_id_for(self, base: str) -> str:
        """This company's id of a per-company DAG: ``base`` itself for the default company."""
        return base if self.name == "default" else f"{base}__{self.name}"


_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "wecom_conn_id": (str,),
    "schedule": (str, type(None)),
    "retries": (int,),
    "freshness_minutes": (int, float),
    "max_delete_share": (int, float),
    "max_delete_count": (int, type(None)),
    "pii": (dict,),
    "pii_salt_variable": (str,),
    "scope": (dict,),
}


@dataclass(frozen=True)
class CompaniesConfig:
    """The companies whose entries are valid, and one line per broken entry (or for the whole Variable)."""

    companies: list[Company]
    problems: list[str]


def read_companies(raw: str | None) -> CompaniesConfig:
    """Companies from the Variable's JSON text, entry by entry; ``None`` or empty means the single default
    company. An entry reusing an earlier entry's name or connection is the broken one: adding a company
    never takes the DAGs of those that already work."""
    if raw is None or not raw.strip():
        return CompaniesConfig([Company()], [])
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        return CompaniesConfig([], [f"wecom_companies is not valid JSON: {error}"])
    if not isinstance(data, list) or not data:
        return CompaniesConfig([], ["wecom_companies must be a non-empty JSON list of company objects"])
    companies: list[Company] = []
    problems: list[str] = []
    for i, item in enumerate(data):
        try:
            company = _company(item, f"wecom_companies[{i}]")
            for attribute in ("name", "wecom_conn_id"):
                value = getattr(company, attribute)
                if any(getattr(other, attribute) == value for other in companies):
                    raise CompanyConfigError(f"wecom_companies[{i}].{attribute}: {value!r} is used twice")
        except CompanyConfigError as error:
            name = item.get("name") if isinstance(item, dict) else None
            problems.append(f"{error} (company {name!r})" if isinstance(name, str) else str(error))
            continue
        companies.append(company)
    return CompaniesConfig(companies, problems)


def _company(item: Any, where: str) -> Company:
    if not isinstance(item, dict):
        raise CompanyConfigError(f"{where}: expected an object, got {type(item).__name__}")
    for key, value in item.items():
        if key == "target_conn_id":
            raise CompanyConfigError(
                f"{where}.target_conn_id: the target database is set in one place, the extra "
                '{"target_conn_id": ...} of the company\'s wecom connection, which the receiver and every DAG read'
            )
        if key not in _TYPES:
            raise CompanyConfigError(f"{where}.{key}: unknown key; known keys are {', '.join(sorted(_TYPES))}")
        if not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and bool not in _TYPES[key]):
            raise CompanyConfigError(f"{where}.{key}: expected {' or '.join(t.__name__ for t in _TYPES[key])}")
    try:
        scope = Scope.from_option(item.get("scope"))
    except ScopeConfigError as error:
        raise CompanyConfigError(f"{where}.{error}") from None
    company = Company(**(item | {"scope": scope}))
    if not _NAME.match(company.name):
        raise CompanyConfigError(f"{where}.name: {company.name!r} must be lower-case letters, digits and _")
    if not 0 < company.max_delete_share <= 1:
        raise CompanyConfigError(f"{where}.max_delete_share: must be above 0 and at most 1")
    if company.retries < 0 or company.freshness_minutes < 0:
        raise CompanyConfigError(f"{where}: retries and freshness_minutes must not be negative")
    try:
        PiiPolicy.from_option(company.pii, salt="syntax-check-only")
    except PiiConfigError as error:
        raise CompanyConfigError(f"{where}.{error}") from None
    return company
