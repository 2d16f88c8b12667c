"""``WeComRobotNotifier``: alerts in the WeCom group where the people who fix the sync already are.

The robot is configured per company in its ``wecom`` connection (extra
``robot_webhook_url``: the robot's whole webhook URL, as the group's robot
settings show it, ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``;
through a proxy, the proxy's). Without one the notifier does nothing, and
Airflow's own notifiers (``SmtpNotifier`` and the others) can be used beside it
or instead::

    on_failure_callback=[WeComRobotNotifier(wecom_conn_id="wecom_acme"), SmtpNotifier(...)]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property

from airflow.sdk import BaseNotifier, Context

from wecom import config
from wecom.constants import DEFAULT_WECOM_CONN_ID
from wecom.hooks.wecom import WeComHook
from wecom.robot import Alert, failure_reason, markdown, send_markdown
from wecom.settings import WeComSettings
from wecom.status import airflow_run_url

log = logging.getLogger(__name__)


def post_alert(settings: WeComSettings, context: Context, title: str, reason: str | None = None) -> bool:
    """Post one alert to the company's group robot; False (and nothing sent) when it has none.

    ``reason`` replaces the one derived from the task's exception. The DAGs' glue calls this with the
    settings its task already resolved; ``WeComRobotNotifier`` with its hook's.
    """
    if not settings.robot_webhook_url:
        log.info("connection %r has no robot_webhook_url: no robot alert", settings.conn_id)
        return False
    dag_run = context["dag_run"]
    ti = context.get("ti")
    base_url = config.airflow_base_url()
    alert = Alert(
        title=title,
        corp_id=settings.corp_id,
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        task_id=ti.task_id if ti is not None else None,
        reason=reason or failure_reason(context.get("exception")),
        run_url=airflow_run_url(base_url, dag_run.dag_id, dag_run.run_id) if base_url.startswith("http") else None,
    )
    send_markdown(settings.robot_webhook_url, markdown(alert, secrets=settings.secrets()))
    return True


class WeComRobotNotifier(BaseNotifier):
    """Post a markdown alert naming the company, DAG, run, task and reason.

    ``reason`` (templated) replaces the one derived from the task's exception,
    for alerts that are not task failures (dead callback events, a tripped
    guard found after the fact).
    """

    template_fields: Sequence[str] = ("wecom_conn_id", "title", "reason")

    def __init__(
        self, *, wecom_conn_id: str = DEFAULT_WECOM_CONN_ID, title: str = "run failed", reason: str | None = None
    ) -> None:
        super().__init__()
        self.wecom_conn_id = wecom_conn_id
        self.title = title
        self.reason = reason

    @cached_property
    def hook(self) -> WeComHook:
        return WeComHook(self.wecom_conn_id)

    def notify(self, context: Context) -> None:
        post_alert(self.hook.settings, context, self.title, self.reason)
