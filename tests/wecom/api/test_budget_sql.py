"""What only the SQL store does: processes on one SQLite file share it, and a missing table does not stop a sync.

The budget's contract on every store, this one included, is tests/wecom/api/test_budget.py. Every
budget here runs on a frozen injected clock whose sleep ends the run, so "took until the window was
spent" is exact and no test waits for real.
"""

from __future__ import annotations

import logging
import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.wecom.api.test_budget import create_budget_table, frozen_budget, take_until_spent
from wecom.api.budget import BudgetKey, RateBudget, RateLimits
from wecom.api.budget_sql import SqlBudgetStore

T0 = 1_800_000_000.0
LIMIT = 200
LIMITS = RateLimits(per_minute=LIMIT, per_hour=None, ip_per_minute=None, ip_per_hour=None)


def sql_budget(engine: Engine, now: float = T0, **options: int) -> RateBudget:
    return frozen_budget(SqlBudgetStore(engine, clock=lambda: now), LIMITS, now, **options)


def used_in_window(engine: Engine) -> int:
    with engine.connect() as conn:
        sql = "SELECT COALESCE(SUM(used), 0) FROM wecom_rate_budget WHERE endpoint = 'user/get'"
        return conn.execute(text(sql)).scalar_one()


def take_in_a_process(url: str, start: Barrier, results: Queue) -> None:
    """Runs in a child process: its own engine, budget and clock, like a second Airflow task."""
    engine = create_engine(url, connect_args={"timeout": 30})
    budget = sql_budget(engine, min_block=2, max_block=4)
    for _ in range(LIMIT // 4):  # a quarter each before the race: both surely draw from the budget
        budget.acquire("user/get")
    start.wait(timeout=60)
    results.put(LIMIT // 4 + take_until_spent(budget))
    engine.dispose()


def test_two_processes_on_one_sqlite_file_never_exceed_the_window_together(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    engine = create_engine(url)
    create_budget_table(engine)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=take_in_a_process, args=(url, start, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    taken = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert sum(taken) == LIMIT, taken
    assert used_in_window(engine) == LIMIT
    engine.dispose()


def test_a_missing_table_falls_back_to_this_process_for_a_minute_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wecom.api.budget_sql")
    engine = create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    now = T0
    store = SqlBudgetStore(engine, clock=lambda: now)
    key = BudgetKey("corp:wwshared", "user/get", 60_000)
    assert [store.reserve(key, int(now), 62, 80, LIMIT) for _ in range(3)] == [80, 80, 40]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one line per outage, not one per reservation"
    assert "wecom_rate_budget" in warnings[0] and "ensure_schema" in warnings[0]
    assert str(tmp_path) not in warnings[0]
    create_budget_table(engine)
    now = T0 + 30
    store.reserve(key, int(now), 62, 10, LIMIT)
    assert used_in_window(engine) == 0, "no round trip to a database that failed a moment ago"
    now = T0 + 61
    store.reserve(key, int(now), 62, 10, LIMIT)
    assert used_in_window(engine) == 10, "back to the shared table after a minute"
