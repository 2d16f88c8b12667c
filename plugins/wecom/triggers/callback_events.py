"""``CallbackEventsTrigger``: waits in the triggerer until callback events are ready to apply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from wecom.callbacks.pending import PendingProbe
from wecom.constants import DEFAULT_MAX_ATTEMPTS, DEFAULT_POLL_INTERVAL_S
from wecom.store.engine import target_url


class CallbackEventsTrigger(BaseTrigger):
    """Polls ``wecom_callback_events`` every ``poll_interval`` seconds; fires once any event of the
    corp is pending (or failed with attempts left). Holds no worker slot.

    Always ends in one event, never in an exception, so the task (not the triggerer's log) says what
    happened: ``{"status": "success", "corp_id", "ready"}`` with the count, or ``{"status": "error",
    "corp_id", "message"}`` when the connection cannot be read or the database does not answer.
    """

    def __init__(
        self,
        target_conn_id: str,
        corp_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        super().__init__()
        self.target_conn_id = target_conn_id
        self.corp_id = corp_id
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "target_conn_id": self.target_conn_id,
                "corp_id": self.corp_id,
                "poll_interval": self.poll_interval,
                "max_attempts": self.max_attempts,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            ready = await self.wait_for_ready()
        except Exception as error:  # the task reports it; a trigger that dies leaves only the triggerer's log
            first_line = next(iter(str(error).splitlines()), "")
            message = (
                f"cannot count the ready callback events of corp {self.corp_id!r} in target database "
                f"{self.target_conn_id!r}: {type(error).__name__}: {first_line}"
            )
            self.log.warning("%s", message)
            yield TriggerEvent({"status": "error", "corp_id": self.corp_id, "message": message})
            return
        self.log.info("%d callback event(s) of %s ready to apply", ready, self.corp_id)
        yield TriggerEvent({"status": "success", "corp_id": self.corp_id, "ready": ready})

    async def wait_for_ready(self) -> int:
        """The number of ready events, once there are any."""
        conn = await BaseHook.aget_connection(self.target_conn_id)
        probe = PendingProbe(target_url(conn), self.corp_id, self.max_attempts)
        try:
            return await probe.wait(self.poll_interval)
        finally:
            await probe.close()
