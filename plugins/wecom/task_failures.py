"""How the core's errors end an Airflow task: what retrying cannot fix fails at once, in one line.

Airflow retries every exception but ``AirflowFailException``. Data that breaks a contract, a wrong
setting and a tripped guard (``wecom.errors.PermanentError``) fail the same way on every try, so the
DAGs' tasks run under ``fails_once``: such an error fails the task without its retries, with its
message on one line (the error stays attached as the failure's context, for the failure callback
and the robot). Every other error (WeCom busy, a database restarting) passes unchanged and is retried
as the DAG's retries allow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from wecom.errors import PermanentError

P = ParamSpec("P")
R = TypeVar("R")


def one_line(error: BaseException) -> str:
    """The error's message on one line (its lines joined with "; ")."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


@contextmanager
def failing_once() -> Iterator[None]:
    """Turn a ``PermanentError`` raised inside into an ``AirflowFailException``: no retries."""
    try:
        yield
    except PermanentError as error:
        raise AirflowFailException(one_line(error)) from None


def fails_once(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` run under ``failing_once``; for ``@task`` functions (their signature is kept)."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with failing_once():
            return function(*args, **kwargs)

    return run
