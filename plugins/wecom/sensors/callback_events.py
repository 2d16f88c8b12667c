"""``CallbackEventsSensor``: succeeds when callback events wait to be applied, deferring while none do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseHook, BaseSensorOperator, Context

from wecom.callbacks.queue import DEFAULT_MAX_ATTEMPTS, count_ready
from wecom.hooks.target_db import engine_from_airflow_connection
from wecom.hooks.wecom import WeComHook
from wecom.triggers.callback_events import CallbackEventsTrigger


class CallbackEventsSensor(BaseSensorOperator):
    """Checks once; if nothing is ready, defers to ``CallbackEventsTrigger`` so no worker slot is held.

    Returns the number of ready events (XCom: one integer). The corp id comes from the ``wecom``
    connection; the events live in the target database connection.
    """

    template_fields = ("wecom_conn_id", "target_conn_id")

    def __init__(
        self,
        *,
        wecom_conn_id: str = "wecom_default",
        target_conn_id: str = "wecom_target_db",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        poke_interval: float = 5.0,
        timeout: float = timedelta(days=1).total_seconds(),
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.wecom_conn_id = wecom_conn_id
        self.target_conn_id = target_conn_id
        self.max_attempts = max_attempts

    def execute(self, context: Context) -> int:
        corp_id = WeComHook(self.wecom_conn_id).settings.corp_id
        engine = engine_from_airflow_connection(BaseHook.get_connection(self.target_conn_id))
        try:
            ready = count_ready(engine, corp_id, self.max_attempts)
        finally:
            engine.dispose()
        if ready:
            self.log.info("%d callback event(s) ready to apply", ready)
            return ready
        self.defer(
            trigger=CallbackEventsTrigger(
                self.target_conn_id, corp_id, poll_interval=self.poke_interval, max_attempts=self.max_attempts
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> int:
        self.log.info("%d callback event(s) ready to apply", event["ready"])
        return int(event["ready"])
