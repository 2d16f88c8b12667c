"""``CallbackEventsSensor``: succeeds when callback events wait to be applied."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from wecom import config
from wecom.callbacks.queue import count_ready
from wecom.company_context import CompanyContext
from wecom.constants import DEFAULT_WECOM_CONN_ID
from wecom.hooks.wecom import WeComHook
from wecom.task_failures import failing_once
from wecom.triggers.callback_events import CallbackEventsTrigger


class CallbackEventsSensor(BaseSensorOperator):
    """Waits until a company's callback events are ready to apply; returns how many (XCom: one integer).

    A sensor like any other: ``poke()`` counts once, so ``mode="reschedule"``, ``timeout``,
    ``soft_fail``, ``exponential_backoff`` and ``max_wait`` behave as Airflow documents them for
    every sensor. With ``deferrable=True`` (the default, from ``[wecom] default_deferrable``) it counts
    once, then waits in the triggerer (``CallbackEventsTrigger``) holding no worker slot, until events
    are ready or ``timeout`` ends the wait. ``poke_interval`` defaults to ``[wecom]
    callback_poll_interval`` and ``timeout`` to ``[wecom] callback_wait_timeout``; events are ready
    while they have attempts left (``max_attempts``, default ``[wecom] callback_max_attempts``). The
    corp id and the target database come from the ``wecom`` connection, as for every task of the
    company.
    """

    template_fields: Sequence[str] = ("wecom_conn_id",)

    def __init__(
        self,
        *,
        wecom_conn_id: str = DEFAULT_WECOM_CONN_ID,
        max_attempts: int | None = None,
        deferrable: bool | None = None,
        poke_interval: timedelta | float | None = None,
        timeout: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            poke_interval=config.callback_poll_interval() if poke_interval is None else poke_interval,
            timeout=config.callback_wait_timeout() if timeout is None else timeout,
            **kwargs,
        )
        self.wecom_conn_id = wecom_conn_id
        self.max_attempts = max_attempts
        self.deferrable = config.default_deferrable() if deferrable is None else deferrable

    @cached_property
    def hook(self) -> WeComHook:
        return WeComHook(self.wecom_conn_id)

    @property
    def attempts(self) -> int:
        """Attempts an event may use before it is dead: the argument, else ``[wecom] callback_max_attempts``."""
        return config.callback_max_attempts() if self.max_attempts is None else self.max_attempts

    def poke(self, context: Context) -> PokeReturnValue:
        with failing_once(), CompanyContext(self.wecom_conn_id, hook=self.hook) as company:
            ready = count_ready(company.engine, company.corp_id, self.attempts)
        if ready:
            self.log.info("%d callback event(s) ready to apply", ready)
        return PokeReturnValue(is_done=ready > 0, xcom_value=ready)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if found := self.poke(context):
            return found.xcom_value
        settings = self.hook.settings  # read by the first poke
        self.defer(
            trigger=CallbackEventsTrigger(
                settings.target_conn_id, settings.corp_id, poll_interval=self.poke_interval, max_attempts=self.attempts
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> int:
        """Back from the trigger: the count, or the trigger's error (with ``soft_fail``, a skip, as for any sensor)."""
        if event.get("status") == "error":
            raise AirflowException(event["message"])
        self.log.info("%d callback event(s) ready to apply", event["ready"])
        return int(event["ready"])
