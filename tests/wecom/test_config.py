"""The ``[wecom]`` section: declared by the provider, read through Airflow's configuration, set by
``AIRFLOW__WECOM__*``; the retired ``WECOM_*`` variables still work this release, with a warning."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest

from wecom import config
from wecom.companies import Company
from wecom.provider_info import get_provider_info
from wecom.run_options import RunConf
from wecom.settings import KNOWN_EXTRA

OPTIONS = get_provider_info()["config"]["wecom"]["options"]


def airflow_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """``airflow ARGS`` through Airflow's own CLI parser, in this process (the CLI's start costs seconds)."""
    from airflow.cli import cli_parser

    capsys.readouterr()
    parsed = cli_parser.get_parser().parse_args(list(args))
    parsed.func(parsed)
    return capsys.readouterr().out


def test_airflow_config_lists_and_reads_the_section(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = airflow_cli(capsys, "config", "list", "--section", "wecom", "--show-values", "--include-descriptions")
    for option, declared in OPTIONS.items():
        assert f"\n{option} = " in listed, option
        assert declared["description"] in listed, option
    assert f"staging_uri = file://{os.environ['AIRFLOW_HOME']}/wecom-staging" in listed
    monkeypatch.setenv("AIRFLOW__WECOM__STAGING_URI", "s3://bucket/wecom")
    assert airflow_cli(capsys, "config", "get-value", "wecom", "staging_uri").strip() == "s3://bucket/wecom"


def test_every_option_is_declared_as_airflow_documents_its_own() -> None:
    for option, declared in OPTIONS.items():
        assert set(declared) == {"description", "version_added", "type", "example", "default"}, option
        assert declared["description"].endswith("."), option
        assert declared["default"] is not None and declared["example"], option


def test_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in OPTIONS:
        monkeypatch.delenv(f"AIRFLOW__WECOM__{option.upper()}", raising=False)
    assert config.staging_uri() == f"file://{os.environ['AIRFLOW_HOME']}/wecom-staging"
    assert config.status_target_conn_ids() == []
    assert config.default_deferrable() is True
    assert (config.callback_poll_interval(), config.callback_wait_timeout(), config.callback_max_attempts()) == (
        5.0,
        3600.0,
        5,
    )


def test_the_environment_sets_each_option(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {
        "STAGING_URI": "gs://bucket/wecom",
        "STATUS_TARGET_CONN_IDS": " db_a, db_b ,",
        "DEFAULT_DEFERRABLE": "false",
        "CALLBACK_POLL_INTERVAL": "0.5",
        "CALLBACK_WAIT_TIMEOUT": "60",
        "CALLBACK_MAX_ATTEMPTS": "2",
    }
    assert {f.lower() for f in settings} == set(OPTIONS)
    for name, value in settings.items():
        monkeypatch.setenv(f"AIRFLOW__WECOM__{name}", value)
    assert config.staging_uri() == "gs://bucket/wecom"
    assert config.status_target_conn_ids() == ["db_a", "db_b"]
    assert config.default_deferrable() is False
    assert (config.callback_poll_interval(), config.callback_wait_timeout(), config.callback_max_attempts()) == (
        0.5,
        60.0,
        2,
    )


def test_a_retired_variable_still_works_this_release_and_names_its_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__WECOM__CALLBACK_MAX_ATTEMPTS", raising=False)
    monkeypatch.setenv("WECOM_DELTA_MAX_ATTEMPTS", "7")
    with pytest.warns(FutureWarning, match=r"WECOM_DELTA_MAX_ATTEMPTS is deprecated.*\[wecom\] callback_max_attempts"):
        assert config.callback_max_attempts() == 7
    monkeypatch.setenv("AIRFLOW__WECOM__CALLBACK_MAX_ATTEMPTS", "3")
    with pytest.warns(FutureWarning, match=r"WECOM_DELTA_MAX_ATTEMPTS is ignored: \[wecom\] callback_max_attempts"):
        assert config.callback_max_attempts() == 3


def test_every_retired_variable_has_an_option_and_a_bad_number_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(config.RETIRED_ENVIRONMENT.values()) <= set(OPTIONS)
    monkeypatch.setenv("AIRFLOW__WECOM__CALLBACK_POLL_INTERVAL", "soon")
    with pytest.raises(ValueError, match=r"\[wecom\] callback_poll_interval must be a float, got 'soon'"):
        config.callback_poll_interval()


def test_a_dropped_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECOM_SQL_DIR", "/somewhere/include/sql")
    with pytest.warns(FutureWarning, match="WECOM_SQL_DIR is no longer read: the SQL files ship inside the package"):
        config.warn_about_dropped_environment()


def test_docs_configuration_lists_every_setting() -> None:
    """docs/configuration.md is the one list: each option, connection extra, company key and run conf key."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    names = {*OPTIONS, *KNOWN_EXTRA, *(f.name for f in fields(Company)), *(f.name for f in fields(RunConf))}
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"docs/configuration.md does not list {missing}"
