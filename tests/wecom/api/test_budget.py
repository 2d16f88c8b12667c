"""The rate budget's contract, on every store it runs on: the in-process one, an SQLite file and PostgreSQL.

Each test runs once per implementation with an injected clock, so no test waits for real. Handles on
one SQL store are separate engines and store objects, as separate processes would hold them; the
in-process store is one object shared by the budgets of one process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.support.throwaway_postgres import database_name_for, empty_database
from wecom.api.budget import BUCKETS, BudgetKey, BudgetStore, MemoryBudgetStore, RateBudget, RateLimits
from wecom.api.budget_sql import SqlBudgetStore
from wecom.store.sql import read_statements

T0 = 1_800_000_000.0  # a minute boundary, so bucket arithmetic is easy to follow
LIMIT = 30
MINUTE_ONLY = RateLimits(per_minute=LIMIT, per_hour=None, ip_per_minute=None, ip_per_hour=None)


class FakeTime:
    """A wall clock that moves only when the budget sleeps (or a test says so)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


Stores = Callable[[FakeTime], BudgetStore]


def create_budget_table(engine: Engine) -> None:
    with engine.begin() as conn:
        for statement in read_statements("schema/50_rate_budget.sql", engine.dialect.name):
            conn.execute(text(statement))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """``stores(clock)``: a handle on one empty store of each implementation."""
    if request.param == "memory":
        memory = MemoryBudgetStore()
        yield lambda _clock: memory
        return
    postgres_url = lambda: request.getfixturevalue("postgres_url")  # noqa: E731
    with empty_database(request.param, tmp_path, postgres_url, database_name_for(request.node.nodeid)) as engine:
        create_budget_table(engine)
        engines: list[Engine] = []

        def handle(clock: FakeTime) -> BudgetStore:
            engines.append(create_engine(engine.url, connect_args=connect_args(engine)))
            return SqlBudgetStore(engines[-1], clock=clock)

        yield handle
        for each in engines:
            each.dispose()


def connect_args(engine: Engine) -> dict[str, float]:
    return {"timeout": 30} if engine.dialect.name == "sqlite" else {}


class CountingStore:
    """Counts the round trips a shared store sees."""

    def __init__(self, store: BudgetStore) -> None:
        self.store = store
        self.reservations: list[int] = []
        self.returned: list[int] = []

    def reserve(self, key: BudgetKey, bucket: int, span: int, want: int, limit: int) -> int:
        self.reservations.append(want)
        return self.store.reserve(key, bucket, span, want, limit)

    def give_back(self, key: BudgetKey, bucket: int, calls: int) -> None:
        self.returned.append(calls)
        self.store.give_back(key, bucket, calls)


def budget(
    store: BudgetStore, time: FakeTime, limits: RateLimits = MINUTE_ONLY, corp_id: str = "wwa", **options: float
) -> RateBudget:
    return RateBudget(limits, store, corp_id, clock=time, sleep=time.sleep, **options)


def admissions(rate_budget: RateBudget, time: FakeTime, calls: int, endpoint: str = "user/get") -> list[float]:
    stamps = []
    for _ in range(calls):
        rate_budget.acquire(endpoint)
        stamps.append(time.now)
    return stamps


def room_at_t0(store: BudgetStore) -> int:
    """What one more process could reserve at T0 (it does reserve it: the last look at a store)."""
    return store.reserve(BudgetKey("corp:wwa", "user/get", 60_000), int(T0), BUCKETS + 2, LIMIT, LIMIT)


def most_in_any_span(stamps: list[float], span_s: float) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for t in stamps[i:] if t < start + span_s) for i, start in enumerate(stamps))


@pytest.mark.parametrize(
    "kwargs",
    [{"per_minute": 0}, {"per_hour": -1}, {"ip_per_minute": 0}, {"minute_s": 0.0}, {"hour_s": -1.0}],
)
def test_invalid_limits_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimits(**kwargs)


def test_defaults_are_wecoms_published_limits_per_corp_and_per_ip() -> None:
    assert RateLimits().windows() == [
        ("corp", 10_000, 60.0),
        ("corp", 150_000, 3600.0),
        ("ip", 20_000, 60.0),
        ("ip", 600_000, 3600.0),
    ]
    assert RateLimits(per_minute=None, ip_per_hour=None).windows() == [("corp", 150_000, 3600.0), ("ip", 20_000, 60.0)]


@pytest.mark.parametrize("options", [{"min_block": 0}, {"min_block": 20, "max_block": 10}, {"margin_s": -1.0}])
def test_invalid_budget_options_are_rejected(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        budget(MemoryBudgetStore(), FakeTime(), **options)


def test_calls_under_the_limit_do_not_wait_and_cost_few_round_trips(stores: Stores) -> None:
    time = FakeTime()
    store = CountingStore(stores(time))
    admissions(budget(store, time, min_block=2, max_block=8), time, LIMIT)
    assert time.slept == []
    assert store.reservations == [2, 4, 8, 8, 8]  # doubling while the blocks get used up, then capped


def test_a_spent_window_waits_and_no_window_long_span_holds_more_than_the_limit(stores: Stores) -> None:
    time = FakeTime(T0 + 12.3)
    stamps = admissions(budget(stores(time), time), time, 4 * LIMIT)
    assert time.slept, "the budget never waited"
    assert most_in_any_span(stamps, 60.0) == LIMIT
    assert most_in_any_span(stamps, 60.0 + 1.0) == LIMIT, "the latency margin keeps one more second free"
    assert stamps[-1] - stamps[0] < 4 * 64.0, "waits no longer than the window, the margin and a bucket"


def test_waits_end_on_bucket_boundaries(stores: Stores) -> None:
    time = FakeTime(T0 + 0.25)
    admissions(budget(stores(time), time), time, LIMIT + 1)
    bucket_s = 60.0 / BUCKETS
    assert math.isclose(time.now / bucket_s, round(time.now / bucket_s))


def test_the_hour_window_is_enforced_too(stores: Stores) -> None:
    limits = RateLimits(per_minute=None, per_hour=5, ip_per_minute=None, ip_per_hour=None)
    time = FakeTime()
    stamps = admissions(budget(stores(time), time, limits), time, 6)
    assert stamps[5] - stamps[0] >= 3600.0


def test_endpoints_have_separate_budgets(stores: Stores) -> None:
    time = FakeTime()
    rate_budget = budget(stores(time), time)
    for endpoint in ("user/get", "user/list", "gettoken"):
        admissions(rate_budget, time, LIMIT, endpoint)
    assert time.slept == []


def test_two_budgets_on_one_store_share_the_window(stores: Stores) -> None:
    time = FakeTime()
    full_sync, callbacks = budget(stores(time), time), budget(stores(time), time)
    taken = {"full_sync": 0, "callbacks": 0}
    while not time.slept:
        for name, rate_budget in (("full_sync", full_sync), ("callbacks", callbacks)):
            rate_budget.acquire("user/get")
            taken[name] += 1 if not time.slept else 0
    assert min(taken.values()) >= 10
    assert room_at_t0(stores(time)) == 0
    full_sync.release_unused()
    callbacks.release_unused()
    assert sum(taken.values()) + room_at_t0(stores(time)) == LIMIT, "every call was made or given back"


class Spent(Exception):
    """The budget wanted to wait: the window is used up for this taker."""


def refuse_to_wait(_seconds: float) -> None:
    raise Spent


def frozen_budget(store: BudgetStore, limits: RateLimits = MINUTE_ONLY, now: float = T0, **options: int) -> RateBudget:
    """A budget whose clock stands still at ``now`` and whose first wait ends its taker (``Spent``)."""
    return RateBudget(limits, store, "wwa", clock=lambda: now, sleep=refuse_to_wait, **options)


def take_until_spent(rate_budget: RateBudget) -> int:
    """Calls ``rate_budget`` admits before it would have to wait."""
    taken = 0
    try:
        while True:
            rate_budget.acquire("user/get")
            taken += 1
    except Spent:
        return taken


def test_concurrent_takers_never_exceed_the_window_together(stores: Stores) -> None:
    """Four budgets in four threads, each on its own handle (its own engine on a SQL store)."""
    handles = [stores(FakeTime()) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        taken = list(pool.map(lambda store: take_until_spent(frozen_budget(store, min_block=3)), handles))
    assert sum(taken) == LIMIT, taken


def test_companies_behind_one_egress_share_the_per_ip_limit(stores: Stores) -> None:
    limits = RateLimits(per_minute=20, per_hour=None, ip_per_minute=LIMIT, ip_per_hour=None)
    time = FakeTime()
    first = budget(stores(time), time, limits, corp_id="wwfirst", max_block=1, min_block=1)
    second = budget(stores(time), time, limits, corp_id="wwsecond", max_block=1, min_block=1)
    other_egress = budget(stores(time), time, limits, corp_id="wwthird", egress="10.0.0.2", max_block=1, min_block=1)
    assert len(admissions(first, time, 20)) == 20
    admissions(second, time, LIMIT - 20)
    admissions(other_egress, time, 20)
    assert time.slept == [], "each corp within its own limit, the shared egress just at its limit"
    second.acquire("user/get")
    assert time.slept, "the egress budget is spent even though the second corp used only 10 of its 20"


def test_unused_calls_given_back_on_release_serve_another_process(stores: Stores) -> None:
    time = FakeTime()
    store = CountingStore(stores(time))
    crashed, released, other = (budget(store, time, min_block=10) for _ in range(3))
    admissions(released, time, 1)
    released.release_unused()
    assert store.returned == [9]
    admissions(crashed, time, 1)  # holds 9 reserved calls it never makes nor gives back
    admissions(other, time, LIMIT - 11)
    assert time.slept == []
    other.acquire("user/get")
    assert time.slept, "the crashed block still counts"


def test_a_crashed_block_lapses_when_its_bucket_leaves_the_window(stores: Stores) -> None:
    time = FakeTime()
    crashed = budget(stores(time), time, min_block=LIMIT)
    admissions(crashed, time, 1)
    other = budget(stores(time), time)
    admissions(other, time, 1)
    assert time.now >= T0 + 60.0, "waited for the crashed block to slide out"
    assert time.now <= T0 + 60.0 + 1.0 + 2 * 60.0 / BUCKETS


def test_a_block_left_over_when_its_bucket_ends_is_given_back(stores: Stores) -> None:
    time = FakeTime()
    store = CountingStore(stores(time))
    rate_budget = budget(store, time, min_block=2, max_block=8)
    admissions(rate_budget, time, 10)  # blocks of 2, 4, 8: four left over
    time.now += 60.0 / BUCKETS
    admissions(rate_budget, time, 1)
    assert store.returned == [4]
    assert store.reservations == [2, 4, 8, 8], "a busy process keeps asking for big blocks"
    assert room_at_t0(store) == LIMIT - 10 - 8, "the ten calls made and the new block count, the four do not"


def kept_buckets(store: BudgetStore) -> int:
    """How many buckets a store still holds (its own way of holding them)."""
    if isinstance(store, MemoryBudgetStore):
        return len(store._used)
    assert isinstance(store, SqlBudgetStore)
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM wecom_rate_budget WHERE bucket >= 0")).scalar_one()


def test_the_store_forgets_buckets_that_left_every_window(stores: Stores) -> None:
    time = FakeTime()
    store = stores(time)
    rate_budget = budget(store, time)
    for _ in range(5):
        admissions(rate_budget, time, 1)
        time.now += 3600.0
    assert kept_buckets(store) == 1


def test_the_store_grants_exactly_up_to_the_limit(stores: Stores) -> None:
    store = stores(FakeTime())
    key = BudgetKey("corp:wwa", "user/get", 60_000)
    bucket = int(T0)
    assert [store.reserve(key, bucket, 62, 12, LIMIT) for _ in range(4)] == [12, 12, 6, 0]
    store.give_back(key, bucket, 5)
    assert store.reserve(key, bucket + 1, 62, 12, LIMIT) == 5
    assert store.reserve(key, bucket + 62, 62, 12, LIMIT) == 12, "bucket 0 left the 62-bucket span"


def test_a_reservation_that_arrives_late_still_respects_every_window(stores: Stores) -> None:
    """A process that read the clock in bucket b may reserve after another one reserved in b+1."""
    store = stores(FakeTime())
    key = BudgetKey("corp:wwa", "user/get", 60_000)
    assert store.reserve(key, int(T0) + 1, 62, LIMIT, LIMIT) == LIMIT
    assert store.reserve(key, int(T0), 62, 1, LIMIT) == 0


class SlowStore(CountingStore):
    """Round trips so slow that the clock moves two buckets (two seconds) while they run."""

    def __init__(self, store: BudgetStore, time: FakeTime, slow_trips: int) -> None:
        super().__init__(store)
        self.time = time
        self.slow_trips = slow_trips
        self.buckets: list[int] = []

    def reserve(self, key: BudgetKey, bucket: int, span: int, want: int, limit: int) -> int:
        self.buckets.append(bucket)
        if len(self.buckets) <= self.slow_trips:
            self.time.now += 2 * 60.0 / BUCKETS
        return super().reserve(key, bucket, span, want, limit)


def test_a_call_is_not_admitted_long_after_the_bucket_it_was_reserved_in(stores: Stores) -> None:
    time = FakeTime()
    store = SlowStore(stores(time), time, slow_trips=1)
    rate_budget = budget(store, time, min_block=5)
    rate_budget.acquire("user/get")
    assert store.buckets == [int(T0), int(T0) + 2], "reserved again in the bucket the clock moved to"
    assert store.returned == [5], "the block of the bucket that ended was given back unused"


def test_a_store_that_stays_slow_slows_calls_down_without_stopping_them(stores: Stores) -> None:
    time = FakeTime()
    store = SlowStore(stores(time), time, slow_trips=1000)
    rate_budget = budget(store, time, min_block=5)
    for _ in range(3):
        rate_budget.acquire("user/get")
    assert len(store.buckets) == 6, "one retry per call, then the late call is taken"
