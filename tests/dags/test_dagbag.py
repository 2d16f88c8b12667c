"""The DAG files parse without import errors, read like their docs, and follow the companies configuration."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.support.airflow_runner import wecom_connection
from wecom.companies import Company

DAGS = Path(__file__).resolve().parents[2] / "dags"
KNOWN_KEYS = ", ".join(sorted(f.name for f in fields(Company)))


@pytest.fixture(autouse=True)
def _metadata(airflow_metadata: Path) -> None:
    """Parsing reads the wecom_companies Variable: env first, then the metadata database."""


def dagbag(monkeypatch: pytest.MonkeyPatch, companies: list[dict] | None = None) -> DagBag:
    if companies is not None:
        monkeypatch.setenv("AIRFLOW_VAR_WECOM_COMPANIES", json.dumps(companies))
    return DagBag(dag_folder=str(DAGS))


def chain(dag) -> list[str]:
    """Task ids in dependency order (each DAG here is a single chain plus side inputs)."""
    return [task.task_id for task in dag.topological_sort()]


def test_default_dags_load_without_import_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = dagbag(monkeypatch)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["wecom_callback_deltas", "wecom_directory_sync"]
    sync = bag.get_dag("wecom_directory_sync")
    assert chain(sync) == [
        "ensure_schema",
        "check_freshness",
        "extract",
        "skip_if_unchanged",
        "transform",
        "quality_checks",
        "load",
        "summarize",
    ]
    assert sync.get_task("summarize").trigger_rule == "none_failed"  # also logs runs skipped early
    assert sync.doc_md and "wecom" in sync.tags
    assert sorted(sync.params.keys()) == ["allow_mass_delete", "dry_run", "force"]
    assert chain(bag.get_dag("wecom_callback_deltas")) == [
        "ensure_schema",
        "wait_for_callbacks",
        "apply_callbacks",
        "summarize",
    ]


def test_one_dag_per_company(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = dagbag(
        monkeypatch,
        [{"name": "default"}, {"name": "acme", "wecom_conn_id": "wecom_acme", "schedule": "0 3 * * *"}],
    )
    assert bag.import_errors == {}
    assert "wecom_directory_sync__acme" in bag.dag_ids and "wecom_callback_deltas__acme" in bag.dag_ids
    acme = bag.get_dag("wecom_directory_sync__acme")
    assert acme.get_task("extract").wecom_conn_id == "wecom_acme"


def test_a_broken_company_entry_costs_only_its_own_dags(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = dagbag(
        monkeypatch,
        [
            {"name": "default"},
            {"name": "acme", "wecom_conn_id": "wecom_acme", "schedul": "@hourly"},
            {"name": "beta", "wecom_conn_id": "wecom_beta"},
        ],
    )
    assert sorted(bag.dag_ids) == [
        "wecom_callback_deltas",
        "wecom_callback_deltas__beta",
        "wecom_directory_sync",
        "wecom_directory_sync__beta",
    ]
    # The DAG files have no import error (one would mark all their DAGs stale); the check file has it.
    (path,) = bag.import_errors
    assert Path(path).name == "wecom_companies.py"
    error = bag.import_errors[path].strip().splitlines()[-1]
    assert error.startswith("wecom.errors.CompanyConfigError: Variable wecom_companies (Admin > Variables)")
    assert error.endswith("wecom_companies[1].schedul: unknown key; known keys are " + KNOWN_KEYS + " (company 'acme')")


def test_an_unreadable_variable_is_named_and_no_company_is_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_WECOM_COMPANIES", "[{not json")
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.dag_ids == []
    (error,) = bag.import_errors.values()
    assert "wecom_companies is not valid JSON" in error


def test_a_target_connection_that_cannot_name_its_tables_is_an_import_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_DEFAULT", wecom_connection("http://127.0.0.1:9", "wwcorp", "s"))
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_TARGET_DB", json.dumps({"conn_type": "sqlite", "host": "wecom.db"}))
    bag = dagbag(monkeypatch)
    # the DAGs stay (their ensure_schema fails in the same line); the check file names the connection
    assert sorted(bag.dag_ids) == ["wecom_callback_deltas", "wecom_directory_sync"]
    (path,) = bag.import_errors
    error = bag.import_errors[path].strip().splitlines()[-1]
    assert Path(path).name == "wecom_companies.py"
    assert error.endswith(
        "assets of the directory tables: target database of 'wecom_default': sqlite connection 'wecom_target_db': "
        "the database file 'wecom.db' is a relative path, which each Airflow process would resolve from its own "
        "working folder: give the absolute path in host"
    )
