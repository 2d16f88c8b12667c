"""How many callback events wait to be applied, asked without blocking an event loop.

The deferrable sensor's trigger polls this from Airflow's triggerer, where one
blocking call would stall every other trigger. SQLAlchemy's async drivers
(aiosqlite, asyncpg; both ship with Airflow) do that natively. A PostgreSQL
connection whose extra carries libpq options (sslmode, options, ...) cannot be
handed to asyncpg unchanged, so that one case runs the ordinary query in a
worker thread instead: equally non-blocking for the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import URL, Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from wecom.store.engine import create_target_engine
from wecom.store.sql import read_named_statements

EVENTS_SQL = "deltas/events.sql"
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: URL) -> URL | None:
    """The same database through its async driver, or None when options would be lost on the way."""
    backend = url.get_backend_name()
    if backend not in ASYNC_DRIVERS or (backend == "postgresql" and url.query):
        return None
    return url.set(drivername=ASYNC_DRIVERS[backend])


class PendingProbe:
    """Counts a corp's ready events (pending, or failed with attempts left) on one target database."""

    # How the probe waits between two counts; tests replace it to step through a wait without a clock.
    sleep = staticmethod(asyncio.sleep)

    def __init__(self, url: URL, corp_id: str, max_attempts: int) -> None:
        self.corp_id = corp_id
        self.max_attempts = max_attempts
        self.dialect = url.get_backend_name()
        converted = async_url(url)
        self._async: AsyncEngine | None = create_async_engine(converted) if converted is not None else None
        self._sync: Engine | None = None if converted is not None else create_target_engine(url)

    def _params(self) -> dict[str, Any]:
        return {"corp_id": self.corp_id, "max_attempts": self.max_attempts}

    def _statement(self):
        return text(read_named_statements(EVENTS_SQL, self.dialect)["count_ready"])

    def _count_blocking(self) -> int:
        assert self._sync is not None
        with self._sync.connect() as conn:
            return int(conn.execute(self._statement(), self._params()).scalar_one())

    async def count(self) -> int:
        if self._async is None:
            return await asyncio.to_thread(self._count_blocking)
        async with self._async.connect() as conn:
            return int((await conn.execute(self._statement(), self._params())).scalar_one())

    async def wait(self, poll_interval: float) -> int:
        """Count every ``poll_interval`` seconds until events are ready; their number."""
        while (ready := await self.count()) == 0:
            await self.sleep(poll_interval)
        return ready

    async def close(self) -> None:
        if self._async is not None:
            await self._async.dispose()
        if self._sync is not None:
            self._sync.dispose()
