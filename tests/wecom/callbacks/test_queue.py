"""The event queue: what counts as ready, the order, and how failures end."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from tests.wecom.callbacks.support import CORP, apply, statuses, store
from wecom.callbacks.queue import EventQueue, count_ready


def test_tag_events_are_ready_and_applied_while_unknown_ones_are_ignored(engine: Engine) -> None:
    """An update_tag event once stayed pending for ever and held the deltas DAG in its sensor."""
    store(engine, "update_tag", 1, TagId=7, AddUserItems="a,b")
    store(engine, "merge_universe", 2, UserID="a")
    assert count_ready(engine, CORP) == 1
    assert apply(engine).events == {"applied": 1, "superseded": 0, "failed": 0, "dead": 0, "out_of_scope": 0}
    assert count_ready(engine, CORP) == 0
    assert statuses(engine) == {"applied": 1, "ignored": 1}


def test_ready_events_come_oldest_first_and_failures_end_dead(engine: Engine) -> None:
    store(engine, "update_party", 20, Id=2, Name="Later")
    store(engine, "update_party", 10, Id=3, Name="Sooner")
    with engine.begin() as conn:
        queue = EventQueue(conn, CORP, max_attempts=2)
        ready = queue.ready(limit=10)
        assert [e.entity_id for e in ready] == ["3", "2"]
        queue.fail({"department event: a one-line reason": [e.event_id for e in ready]}, run_id="r1")
    assert count_ready(engine, CORP, max_attempts=2) == 2
    with engine.begin() as conn:
        queue = EventQueue(conn, CORP, max_attempts=2)
        queue.fail({"department event: a one-line reason": [ready[0].event_id]}, run_id="r2")
        queue.mark("applied", [ready[1].event_id], run_id="r2", now=datetime.now(UTC))
        queue.mark("superseded", [ready[0].event_id], run_id="r2", now=datetime.now(UTC))
    assert statuses(engine) == {"dead": 1, "applied": 1}
    assert count_ready(engine, CORP, max_attempts=2) == 0
