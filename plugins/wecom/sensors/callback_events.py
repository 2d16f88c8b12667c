"""``CallbackEventsSensor``: succeeds when callback events wait to be applied, deferring while none do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseHook, BaseSensorOperator, Context

from wecom.callbacks.queue import DEFAULT_MAX_ATTEMPTS, count_ready
from wecom.hooks.wecom import WeComHook
from wecom.store.engine import engine_from_airflow_connection
from wecom.triggers.callback_events import CallbackEventsTrigger


class CallbackEventsSensor(BaseSensorOperator):
    """Checks once; if nothing is ready, defers to ``CallbackEventsTrigger`` so no worker slot is held.

    Returns the number of ready events (XCom: one integer). The corp id and the target database (its
    ``target_conn_id``) come from the ``wecom`` connection, as for every task of the company.
    """

    template_fields = ("wecom_conn_id",)

    def __init__(
        self,
        *,
        wecom_conn_id: str = "wecom_default",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        poke_interval: float = 5.0,
        timeout: float = timedelta(days=1).total_seconds(),
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.wecom_conn_id = wecom_conn_id
        self.max_attempts = max_attempts

    def execute(self, context: Context) -> int:
        settings = WeComHook(self.wecom_conn_id).settings
        corp_id, target_conn_id = settings.corp_id, settings.target_conn_id
        engine = engine_from_airflow_connection(BaseHook.get_connection(target_conn_id))
        try:
            ready = count_ready(engine, corp_id, self.max_attempts)
        finally:
            engine.dispose()
        if ready:
            self.log.info("%d callback event(s) ready to apply", ready)
            return ready
        self.defer(
            trigger=CallbackEventsTrigger(
                target_conn_id, corp_id, poll_interval=self.poke_interval, max_attempts=self.max_attempts
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> int:
        self.log.info("%d callback event(s) ready to apply", event["ready"])
        return int(event["ready"])
