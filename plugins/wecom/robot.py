"""Alerts to a WeCom group robot: what a message says, and posting it to the robot's webhook.

A robot takes ``POST /cgi-bin/webhook/send?key=KEY`` with a markdown message
of at most 4096 bytes and answers ``errcode`` like every WeCom API. The key is
a credential (anyone holding it can post to the group), so the URL is never
logged. Messages name the company, DAG, run and reason, never member data:
only the messages of this package's own configuration and API errors are
quoted, which are written to hold neither secrets nor members; any other
failure is reported by its class, the task log has the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import requests

from wecom.errors import DataContractError, MassDeletionError, QualityCheckError, RobotError, SettingsError, WeComError

log = logging.getLogger(__name__)

MAX_CONTENT_BYTES = 4096
MAX_REASON_CHARS = 600


@dataclass(frozen=True)
class Alert:
    title: str
    corp_id: str
    dag_id: str
    run_id: str
    reason: str
    task_id: str | None = None
    run_url: str | None = None


def _chain(error: BaseException | None) -> Iterable[BaseException]:
    """The error and what caused it, including context hidden by ``raise ... from None``."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def failure_reason(error: BaseException | str | None) -> str:
    """A reason safe to post in a group chat (see the module docstring)."""
    if error is None:
        return "no exception was recorded; see the task log"
    if isinstance(error, str):
        return error
    for cause in _chain(error):
        if reason := _safe_reason(cause):
            return reason
    return f"{type(error).__name__} (details in the task log)"


def _safe_reason(cause: BaseException) -> str | None:
    """What the chat may hear of one error of the chain: never ids or values (they may be personal data)."""
    if isinstance(cause, MassDeletionError):
        return "the mass-deletion guard stopped the load: nothing was deleted (see the status page)"
    if isinstance(cause, QualityCheckError):
        return "the snapshot failed its quality checks: nothing was loaded (the task log names the ids)"
    if isinstance(cause, DataContractError):
        return f"the snapshot breaks a rule ({cause.rule}): nothing was loaded (the task log names the records)"
    if isinstance(cause, WeComError | SettingsError):
        return str(cause).splitlines()[0]
    return None


def _scrub(value: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            value = value.replace(secret, "***")
    return value


def markdown(alert: Alert, *, secrets: Iterable[str] = ()) -> str:
    """The robot message; the reason is shortened so the whole stays within 4096 bytes."""
    lines = [
        f'## <font color="warning">WeCom sync: {alert.title}</font>',
        f"> company: {alert.corp_id}",
        f"> DAG: {alert.dag_id}",
        f"> run: {alert.run_id}",
    ]
    if alert.task_id:
        lines.append(f"> task: {alert.task_id}")
    footer = [f"[Open the run in Airflow]({alert.run_url})"] if alert.run_url else []
    head = "\n".join(lines) + "\n> reason: "
    tail = "\n" + "\n".join(footer) if footer else ""
    reason = _scrub(alert.reason, secrets)[:MAX_REASON_CHARS]
    room = MAX_CONTENT_BYTES - len((head + tail).encode("utf-8"))
    encoded = reason.encode("utf-8")
    if len(encoded) > room:
        reason = encoded[: max(room - 3, 0)].decode("utf-8", errors="ignore") + "..."
    return _scrub(head + reason + tail, secrets)


def send_markdown(webhook_url: str, content: str, *, timeout: float = 10.0) -> None:
    """Post ``content`` to the robot's webhook URL (its key in the query); raise ``RobotError`` (never
    showing the URL or the key) unless the robot answers errcode 0."""
    try:
        response = requests.post(
            webhook_url,
            json={"msgtype": "markdown", "markdown": {"content": content}},
            timeout=timeout,
        )
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as error:
        raise RobotError(f"the group robot could not be reached: {type(error).__name__}") from None
    errcode = body.get("errcode", 0) if isinstance(body, dict) else None
    if errcode != 0:
        errmsg = str(body.get("errmsg", "")).split(",")[0] if isinstance(body, dict) else ""
        raise RobotError(f"the group robot refused the message: errcode {errcode} ({errmsg})", errcode)
    log.info("alert posted to the WeCom group robot (%d bytes)", len(content.encode("utf-8")))
