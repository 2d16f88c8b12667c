"""The robot notifier against the simulator's group-robot endpoint, over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest

from wecom.errors import DataContractError, MassDeletionError, QualityCheckError, RobotError, WeComConfigError
from wecom.notifications.wecom_robot import WeComRobotNotifier
from wecom.robot import MAX_CONTENT_BYTES, send_markdown
from wecom_simulator.org import generate_org
from wecom_simulator.testing import running_simulator

ROBOT_KEY = "693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa"
SECRET = "the-corp-secret-value"


@pytest.fixture
def simulator():
    with running_simulator(generate_org(members=3, departments=2), corp_id="wwrobot", secret=SECRET) as sim:
        yield sim


def webhook(sim, key: str) -> str:
    """The robot's webhook URL as the group's robot settings show it (here on the simulator)."""
    return f"{sim.base_url}/cgi-bin/webhook/send?key={key}"


def _messages(sim) -> list[dict]:
    return httpx.get(f"{sim.base_url}/_sim/robot/messages").json()["messages"]


def _connection(monkeypatch: pytest.MonkeyPatch, base_url: str, **extra: object) -> None:
    conn = {"conn_type": "wecom", "host": base_url, "login": "wwrobot", "password": SECRET, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_ROBOT", json.dumps(conn))


def _context(exception: BaseException | None) -> dict:
    dag_run = SimpleNamespace(dag_id="wecom_directory_sync", run_id="scheduled__2026-11-26T00:00:00+00:00")
    return {"dag_run": dag_run, "ti": SimpleNamespace(task_id="load"), "exception": exception}


def _chained(inner: Exception) -> Exception:
    """As the DAG raises it: ``AirflowFailException(str(error)) from None`` keeps the cause as context."""
    try:
        try:
            raise inner
        except Exception as error:
            raise RuntimeError(str(error)) from None
    except RuntimeError as outer:
        return outer


def test_failed_run_alert_arrives_as_markdown(simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, simulator.base_url, robot_webhook_url=webhook(simulator, ROBOT_KEY))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    error = WeComConfigError(f"connection 'wecom_robot': invalid secret (40001) for secret {SECRET}")
    WeComRobotNotifier(wecom_conn_id="wecom_robot")(_context(error))
    (message,) = _messages(simulator)
    assert (message["key"], message["msgtype"]) == (ROBOT_KEY, "markdown")
    content = message["content"]
    assert "run failed" in content and "wwrobot" in content
    assert "> DAG: wecom_directory_sync" in content and "> task: load" in content
    assert "invalid secret (40001)" in content
    assert SECRET not in content
    assert (
        "(https://airflow.example.com/dags/wecom_directory_sync/runs/scheduled__2026-11-26T00%3A00%3A00%2B00%3A00)"
        in content
    )


def test_guard_quality_and_contract_failures_say_what_happened_without_member_ids(
    simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connection(monkeypatch, simulator.base_url, robot_webhook_url=webhook(simulator, ROBOT_KEY))
    quality = _chained(QualityCheckError(["member zhangsan in unknown department 99"]))
    guard = _chained(MassDeletionError("would delete lisi, wangwu and 700 others"))
    contract = _chained(DataContractError("every member record carries a userid", "1 record, staged line 7 (王五)"))
    WeComRobotNotifier(wecom_conn_id="wecom_robot")(_context(quality))
    WeComRobotNotifier(wecom_conn_id="wecom_robot", title="deletion guard tripped")(_context(guard))
    WeComRobotNotifier(wecom_conn_id="wecom_robot")(_context(contract))
    first, second, third = (m["content"] for m in _messages(simulator))
    assert "quality checks" in first and "zhangsan" not in first
    assert "deletion guard tripped" in second and "nothing was deleted" in second
    assert "lisi" not in second
    assert "every member record carries a userid" in third and "nothing was loaded" in third
    assert "王五" not in third and "line 7" not in third


def test_long_reasons_fit_the_robots_limit(simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, simulator.base_url, robot_webhook_url=webhook(simulator, ROBOT_KEY))
    notifier = WeComRobotNotifier(wecom_conn_id="wecom_robot", reason="事件" * 3000)
    notifier(_context(None))
    (message,) = _messages(simulator)
    assert len(message["content"].encode("utf-8")) <= MAX_CONTENT_BYTES


def test_no_key_means_no_alert(simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, simulator.base_url)
    WeComRobotNotifier(wecom_conn_id="wecom_robot")(_context(RuntimeError("boom")))
    assert _messages(simulator) == []


def test_refusals_raise_without_showing_the_key(simulator) -> None:
    httpx.put(f"{simulator.base_url}/_sim/robot/keys", json={"keys": [ROBOT_KEY]}).raise_for_status()
    with pytest.raises(RobotError, match="93000") as refused:
        send_markdown(webhook(simulator, "some-other-key"), "hello")
    assert "some-other-key" not in str(refused.value)
    for _ in range(20):
        send_markdown(webhook(simulator, ROBOT_KEY), f"at {datetime.now(UTC)}")
    with pytest.raises(RobotError, match="45009"):
        send_markdown(webhook(simulator, ROBOT_KEY), "the 21st message this minute")
