"""What retrying cannot fix fails a task at once, in one line; everything else reaches Airflow's retries."""

from __future__ import annotations

import inspect

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy.exc import OperationalError

from wecom.errors import (
    DataContractError,
    MassDeletionError,
    PermanentError,
    QualityCheckError,
    SettingsError,
    WeComConfigError,
    WeComTransientError,
)
from wecom.task_failures import failing_once, fails_once, one_line

PERMANENT = [
    DataContractError("every member record carries a userid", "1 member record(s) do not, staged line(s) 25"),
    QualityCheckError(["departments whose parent is unknown: 9 (parent 99)", "duplicate memberships: a in 1"]),
    MassDeletionError("10 of 20 users would be deleted"),
    SettingsError("connection 'wecom_default': field strategy must be one of ..."),
    WeComConfigError("invalid secret (40001)", errcode=40001, endpoint="gettoken"),
]
TRANSIENT = [
    WeComTransientError("user/list answered -1 (system busy) 4 times", errcode=-1, endpoint="user/list"),
    OperationalError("INSERT ...", {}, Exception("server closed the connection unexpectedly")),
    TimeoutError("read timed out"),
]


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_what_retrying_cannot_fix_fails_at_once_in_one_line(error: PermanentError) -> None:
    with pytest.raises(AirflowFailException) as failure, failing_once():
        raise error
    message = str(failure.value)
    assert "\n" not in message and message == one_line(error)
    assert failure.value.__context__ is error  # the failure callback and the robot still see the cause


def test_a_broken_data_contract_names_the_rule_and_the_records() -> None:
    with pytest.raises(AirflowFailException) as failure, failing_once():
        raise PERMANENT[0]
    assert str(failure.value) == ("every member record carries a userid: 1 member record(s) do not, staged line(s) 25")


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors_pass_unchanged_for_airflows_retries(error: Exception) -> None:
    with pytest.raises(type(error)) as raised, failing_once():
        raise error
    assert raised.value is error and not isinstance(raised.value, AirflowFailException)


def test_a_task_function_keeps_its_signature_name_and_result() -> None:
    def transform(manifest: dict, pii: dict[str, str], **context: object) -> dict[str, int]:
        """Transform the run's staged records."""
        if manifest.get("bad"):
            raise PERMANENT[0]
        return {"wecom_users": len(pii)}

    wrapped = fails_once(transform)
    assert (wrapped.__name__, wrapped.__doc__) == ("transform", "Transform the run's staged records.")
    assert inspect.signature(wrapped) == inspect.signature(transform)
    assert wrapped({}, {"mobile": "hash"}) == {"wecom_users": 1}
    with pytest.raises(AirflowFailException):
        wrapped({"bad": True}, {})
