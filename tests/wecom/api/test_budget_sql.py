"""The shared budget in a real database: separate processes and engines never exceed a window together.

Every budget here runs on a frozen injected clock whose sleep ends the run, so
"took until the window was spent" is exact and no test waits for real.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from wecom.api.budget import BudgetKey, RateBudget, RateLimits
from wecom.api.budget_sql import SqlBudgetStore
from wecom.store.sql import read_statements

T0 = 1_800_000_000.0
LIMIT = 200
LIMITS = RateLimits(per_minute=LIMIT, per_hour=None, ip_per_minute=None, ip_per_hour=None)
BOTH_DIALECTS = pytest.mark.parametrize(
    "target_engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


class Spent(Exception):
    """The budget wanted to wait: the window is used up for this taker."""


def refuse_to_wait(seconds: float) -> None:
    raise Spent


def create_budget_table(engine: Engine) -> None:
    with engine.begin() as conn:
        for statement in read_statements("schema/50_rate_budget.sql", engine.dialect.name):
            conn.execute(text(statement))


def frozen_budget(engine: Engine, now: float = T0, **options: int) -> RateBudget:
    store = SqlBudgetStore(engine, clock=lambda: now)
    return RateBudget(LIMITS, store, "wwshared", clock=lambda: now, sleep=refuse_to_wait, **options)


def take_until_spent(budget: RateBudget) -> int:
    taken = 0
    try:
        while True:
            budget.acquire("user/get")
            taken += 1
    except Spent:
        return taken


def used_in_window(engine: Engine) -> int:
    with engine.connect() as conn:
        sql = "SELECT COALESCE(SUM(used), 0) FROM wecom_rate_budget WHERE endpoint = 'user/get'"
        return conn.execute(text(sql)).scalar_one()


def take_in_a_process(url: str, start: Barrier, results: Queue) -> None:
    """Runs in a child process: its own engine, budget and clock, like a second Airflow task."""
    engine = create_engine(url, connect_args={"timeout": 30})
    budget = frozen_budget(engine, min_block=2, max_block=4)
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


@BOTH_DIALECTS
def test_concurrent_engines_never_exceed_the_window_together(target_engine: Engine) -> None:
    create_budget_table(target_engine)
    engines = [create_engine(target_engine.url, connect_args=connect_args(target_engine)) for _ in range(4)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            taken = list(pool.map(lambda engine: take_until_spent(frozen_budget(engine, min_block=3)), engines))
    finally:
        for engine in engines:
            engine.dispose()
    assert sum(taken) == LIMIT, taken
    assert used_in_window(target_engine) == LIMIT


def connect_args(engine: Engine) -> dict[str, float]:
    return {"timeout": 30} if engine.dialect.name == "sqlite" else {}


@BOTH_DIALECTS
def test_unused_calls_are_given_back_or_lapse_with_their_bucket(target_engine: Engine) -> None:
    create_budget_table(target_engine)
    polite = frozen_budget(target_engine, min_block=50)
    polite.acquire("user/get")
    polite.release_unused()
    crashed = frozen_budget(target_engine, min_block=50)
    crashed.acquire("user/get")  # holds 49 it never makes nor gives back
    assert used_in_window(target_engine) == 1 + 50
    assert take_until_spent(frozen_budget(target_engine)) == LIMIT - 51
    later = T0 + 60 + 2  # the window and the margin have passed: the crashed block no longer counts
    assert take_until_spent(frozen_budget(target_engine, now=later)) == LIMIT


@BOTH_DIALECTS
def test_buckets_that_left_every_window_are_pruned(target_engine: Engine) -> None:
    create_budget_table(target_engine)
    take_until_spent(frozen_budget(target_engine))
    take_until_spent(frozen_budget(target_engine, now=T0 + 86_400))
    with target_engine.connect() as conn:
        buckets = conn.execute(text("SELECT bucket FROM wecom_rate_budget WHERE bucket >= 0")).scalars().all()
    assert buckets == [int(T0 + 86_400)]


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


def test_the_store_reports_grants_exactly_at_the_edge(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    create_budget_table(engine)
    store = SqlBudgetStore(engine, clock=lambda: T0)
    key = BudgetKey("corp:wwshared", "user/get", 60_000)
    bucket = int(T0)
    assert [store.reserve(key, bucket, 62, 80, LIMIT) for _ in range(4)] == [80, 80, 40, 0]
    store.give_back(key, bucket, 30)
    assert store.reserve(key, bucket + 1, 62, 80, LIMIT) == 30
    assert store.reserve(key, bucket + 62, 62, 80, LIMIT) == 80, "bucket 0 left the 62-bucket span"


@BOTH_DIALECTS
def test_a_reservation_that_arrives_late_still_respects_every_window(target_engine: Engine) -> None:
    """A process that read the clock in bucket b may reserve after another one reserved in b+1."""
    create_budget_table(target_engine)
    store = SqlBudgetStore(target_engine, clock=lambda: T0)
    key = BudgetKey("corp:wwshared", "user/get", 60_000)
    assert store.reserve(key, int(T0) + 1, 62, LIMIT, LIMIT) == LIMIT
    assert store.reserve(key, int(T0), 62, 1, LIMIT) == 0
