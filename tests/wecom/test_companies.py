"""The companies configuration: defaults, DAG ids, and errors that name the bad key."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from wecom.companies import _TYPES, Company, CompanyConfigError, parse_companies


def test_no_configuration_means_the_single_default_company() -> None:
    assert parse_companies(None) == [Company()]
    company = parse_companies("")[0]
    assert (company.dag_id, company.wecom_conn_id, company.schedule) == (
        "wecom_directory_sync",
        "wecom_default",
        "@daily",
    )


def test_the_target_database_is_not_a_company_option() -> None:
    """One rule: the wecom connection's target_conn_id, which the receiver reads too."""
    with pytest.raises(CompanyConfigError, match=r"wecom_companies\[0\]\.target_conn_id: .*wecom connection"):
        parse_companies(json.dumps([{"name": "acme", "target_conn_id": "elsewhere"}]))


def test_several_companies_get_their_own_dags() -> None:
    companies = parse_companies(
        json.dumps(
            [
                {"name": "default"},
                {"name": "acme", "wecom_conn_id": "wecom_acme", "schedule": None, "pii": {"mobile": "hash"}},
            ]
        )
    )
    assert [c.dag_id for c in companies] == ["wecom_directory_sync", "wecom_directory_sync__acme"]
    assert companies[1].schedule is None and companies[1].pii == {"mobile": "hash"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        ("{}", "non-empty JSON list"),
        ('["acme"]', r"wecom_companies\[0\]: expected an object"),
        ('[{"name": "a", "schedul": "@daily"}]', r"wecom_companies\[0\]\.schedul: unknown key"),
        ('[{"name": "a", "retries": "3"}]', r"wecom_companies\[0\]\.retries: expected int"),
        ('[{"name": "a", "retries": true}]', r"wecom_companies\[0\]\.retries: expected int"),
        ('[{"name": "Acme Corp"}]', r"wecom_companies\[0\]\.name: 'Acme Corp'"),
        ('[{"name": "a", "max_delete_share": 2}]', r"max_delete_share: must be above 0"),
        ('[{"name": "a", "pii": {"phone": "drop"}}]', r"wecom_companies\[0\]\.pii\.phone: unknown field"),
        ('[{"name": "a"}, {"name": "a", "wecom_conn_id": "x"}]', r"wecom_companies\[1\]\.name: 'a' is used twice"),
        ('[{"name": "a"}, {"name": "b"}]', r"wecom_companies\[1\]\.wecom_conn_id: 'wecom_default' is used twice"),
    ],
)
def test_malformed_configuration_names_the_key(raw: str, message: str) -> None:
    with pytest.raises(CompanyConfigError, match=message):
        parse_companies(raw)


def test_the_accepted_keys_are_exactly_the_company_fields() -> None:
    assert set(_TYPES) == {f.name for f in fields(Company)}


@pytest.mark.parametrize("key", [f.name for f in fields(Company)])
def test_every_field_can_be_set_and_refuses_a_value_of_the_wrong_type(key: str) -> None:
    default = Company()
    value = getattr(default, key)
    explicit = {"pii": dict(value)} if key == "pii" else {key: value}
    assert parse_companies(json.dumps([explicit])) == [default]
    with pytest.raises(CompanyConfigError, match=rf"^wecom_companies\[0\]\.{key}: expected "):
        parse_companies(json.dumps([{key: [value]}]))
