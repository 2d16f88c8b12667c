"""The rate budget's counts in a SQL database (``wecom_rate_budget``), shared across processes and machines.

Each reservation is one short transaction under the counter's row lock (see
``include/sql/rate_budget/``); the counts are the only state, so a process that
dies mid-block leaves nothing to clean up. When the database cannot be reached
the budget counts in this process for a minute and says so, because a sync that
could run before the budget existed should not fail because of it (WeCom's own
45009 handling in the transport still backs it up), nor wait for a connect
timeout on every block while the database is away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine, TextClause, text
from sqlalchemy.exc import SQLAlchemyError

from wecom.api.budget import BudgetKey, MemoryBudgetStore
from wecom.store.sql import check_dialect, read_statement

_log = logging.getLogger(__name__)
PRUNE_EVERY_S = 600.0
RETRY_STORE_AFTER_S = 60.0


class SqlBudgetStore:
    """``BudgetStore`` on an SQLAlchemy engine (SQLite file or PostgreSQL); the table comes from ``schema/``."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._dialect = check_dialect(engine.dialect.name)
        self._clock = clock
        self._fallback = MemoryBudgetStore()
        self._pruned_at = float("-inf")
        self._failed_at = float("-inf")

    def __repr__(self) -> str:
        return f"SqlBudgetStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def reserve(self, key: BudgetKey, bucket: int, span: int, want: int, limit: int) -> int:
        if self._away():
            return self._fallback.reserve(key, bucket, span, want, limit)
        params = _row(key, bucket) | {"span": span, "want": want, "limit": limit}
        self._prune_now_and_then()
        try:
            with self.engine.begin() as conn:
                conn.execute(self._sql("lock_key"), params)
                conn.execute(self._sql("open_bucket"), params | {"expires_at": key.expires_at(bucket, span)})
                conn.execute(self._sql("grant"), params)
                return int(conn.execute(self._sql("take_grant"), params).scalar_one())
        except SQLAlchemyError as error:
            self._failed(error)
            return self._fallback.reserve(key, bucket, span, want, limit)

    def give_back(self, key: BudgetKey, bucket: int, calls: int) -> None:
        if self._away():
            self._fallback.give_back(key, bucket, calls)
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(self._sql("give_back"), _row(key, bucket) | {"calls": calls})
        except SQLAlchemyError as error:
            self._failed(error)

    def _away(self) -> bool:
        """Whether the database failed less than a minute ago (then the fallback counts)."""
        return self._clock() - self._failed_at < RETRY_STORE_AFTER_S

    def _sql(self, name: str) -> TextClause:
        return text(read_statement(f"rate_budget/{name}.sql", self._dialect))

    def _prune_now_and_then(self) -> None:
        """Delete expired buckets every few minutes, in a transaction of its own: two processes
        pruning at once may deadlock, and that must cost a prune, never a reservation."""
        now = self._clock()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        try:
            with self.engine.begin() as conn:
                conn.execute(self._sql("prune"), {"now": int(now)})
        except SQLAlchemyError as error:
            _log.info("pruning wecom_rate_budget failed (%s); trying again later", type(error).__name__)

    def _failed(self, error: SQLAlchemyError) -> None:
        """One line per outage minute: the cause's class and the table, never bound values or the URL."""
        self._failed_at = self._clock()
        _log.warning(
            "the shared rate budget (table wecom_rate_budget) is unavailable (%s); counting calls in this process "
            "for the next %.0f s: run the DAG's ensure_schema task if the table is missing",
            type(getattr(error, "orig", None) or error).__name__,
            RETRY_STORE_AFTER_S,
        )


def _row(key: BudgetKey, bucket: int) -> dict[str, object]:
    return {"scope": key.scope, "endpoint": key.endpoint, "window_ms": key.window_ms, "bucket": bucket}
