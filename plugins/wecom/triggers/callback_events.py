"""``CallbackEventsTrigger``: waits in the triggerer until callback events are ready to apply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from wecom.callbacks.pending import PendingProbe
from wecom.callbacks.queue import DEFAULT_MAX_ATTEMPTS
from wecom.store.engine import target_url


class CallbackEventsTrigger(BaseTrigger):
    """Polls ``wecom_callback_events`` every ``poll_interval`` seconds; fires once any event of the
    corp is pending (or failed with attempts left), with the count. Holds no worker slot."""

    def __init__(
        self,
        target_conn_id: str,
        corp_id: str,
        *,
        poll_interval: float = 5.0,
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
        conn = await BaseHook.aget_connection(self.target_conn_id)
        probe = PendingProbe(target_url(conn), self.corp_id, self.max_attempts)
        try:
            while (ready := await probe.count()) == 0:
                await asyncio.sleep(self.poll_interval)
        finally:
            await probe.close()
        self.log.info("%d callback event(s) of %s ready to apply", ready, self.corp_id)
        yield TriggerEvent({"corp_id": self.corp_id, "ready": ready})
