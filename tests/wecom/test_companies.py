"""The companies configuration: defaults, DAG ids, and errors that name the bad entry and key."""

from __future__ import annotations

import json
import re
from dataclasses import fields

import pytest

from wecom.companies import _TYPES, Company, read_companies


def companies(raw: str) -> list[Company]:
    """The companies of a configuration that must have no problem."""
    config = read_companies(raw)
    assert config.problems == []
    return config.companies


def problem(raw: str) -> str:
    """The one problem of a configuration, which must configure no company."""
    config = read_companies(raw)
    assert config.companies == [] and len(config.problems) == 1
    return config.problems[0]


def test_no_configuration_means_the_single_default_company() -> None:
    assert read_companies(None).companies == [Company()] and read_companies(None).problems == []
    company = companies("")[0]
    assert (company.dag_id, company.wecom_conn_id, company.schedule) == (
        "wecom_directory_sync",
        "wecom_default",
        "@daily",
    )


def test_the_target_database_is_not_a_company_option() -> None:
    """One rule: the wecom connection's target_conn_id, which the receiver reads too."""
    message = problem(json.dumps([{"name": "acme", "target_conn_id": "elsewhere"}]))
    assert re.match(r"wecom_companies\[0\]\.target_conn_id: .*wecom connection.*\(company 'acme'\)$", message)


def test_several_companies_get_their_own_dags() -> None:
    several = companies(
        json.dumps(
            [
                {"name": "default"},
                {"name": "acme", "wecom_conn_id": "wecom_acme", "schedule": None, "pii": {"mobile": "hash"}},
            ]
        )
    )
    assert [c.dag_id for c in several] == ["wecom_directory_sync", "wecom_directory_sync__acme"]
    assert several[1].schedule is None and several[1].pii == {"mobile": "hash"}


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
    ],
)
def test_malformed_configuration_names_the_key(raw: str, message: str) -> None:
    assert re.search(message, problem(raw))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('[{"name": "a"}, {"name": "a", "wecom_conn_id": "x"}]', "wecom_companies[1].name: 'a' is used twice"),
        ('[{"name": "a"}, {"name": "b"}]', "wecom_companies[1].wecom_conn_id: 'wecom_default' is used twice"),
    ],
)
def test_the_later_of_two_clashing_entries_is_the_broken_one(raw: str, message: str) -> None:
    """Adding a company never takes the DAGs of one that already works."""
    config = read_companies(raw)
    assert [c.name for c in config.companies] == ["a"]
    assert [p.split(" (company")[0] for p in config.problems] == [message]


def test_a_broken_entry_costs_only_its_own_company() -> None:
    config = read_companies(
        json.dumps(
            [
                {"name": "default"},
                {"name": "acme", "retries": "3"},
                ["not", "an", "object"],
                {"name": "b", "wecom_conn_id": "wecom_b"},
            ]
        )
    )
    assert [c.name for c in config.companies] == ["default", "b"]
    assert config.problems == [
        "wecom_companies[1].retries: expected int (company 'acme')",
        "wecom_companies[2]: expected an object, got list",
    ]


def test_the_accepted_keys_are_exactly_the_company_fields() -> None:
    assert set(_TYPES) == {f.name for f in fields(Company)}


@pytest.mark.parametrize("key", [f.name for f in fields(Company)])
def test_every_field_can_be_set_and_refuses_a_value_of_the_wrong_type(key: str) -> None:
    default = Company()
    value = getattr(default, key)
    written = {"pii": {}, "scope": {"include": [1]}}.get(key, value)
    assert companies(json.dumps([{key: written}])) == [default]
    assert problem(json.dumps([{key: [written]}])).startswith(f"wecom_companies[0].{key}: expected ")
