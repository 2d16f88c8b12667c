"""Departments from callbacks: ids-only creates and moves, cycles held then dead, paths re-derived."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.wecom.callbacks.support import apply, rows, seed_tree, statuses, store


def paths(engine: Engine) -> dict[int, tuple]:
    return {
        d: (name, path) for d, name, path in rows(engine, "SELECT department_id, name, path FROM wecom_departments")
    }


def test_ids_only_party_events_create_and_move_without_a_fetch(engine: Engine) -> None:
    seed_tree(engine)
    apply(engine)
    store(engine, "create_party", 10, Id=5, ParentId=3)
    store(engine, "update_party", 11, Id=2, ParentId=5)
    result = apply(engine)
    assert result.events["applied"] == 2 and result.api_calls == {}
    assert paths(engine) == {
        1: ("Root", "/1/"),
        2: ("Sales", "/1/3/5/2/"),
        3: ("R&D", "/1/3/"),
        4: ("East", "/1/3/5/2/4/"),
        5: (None, "/1/3/5/"),
    }
    closure = rows(engine, "SELECT ancestor_id FROM wecom_department_closure WHERE descendant_id = 4")
    assert sorted(a for (a,) in closure) == [1, 2, 3, 4, 5]


def test_a_move_that_would_make_a_cycle_waits_then_is_dead_with_the_reason(engine: Engine) -> None:
    seed_tree(engine)
    apply(engine)
    before = rows(engine, "SELECT * FROM wecom_departments ORDER BY department_id")
    store(engine, "update_party", 20, Id=2, ParentId=4)
    store(engine, "update_party", 21, Id=3, Name="Research")
    first = apply(engine, max_attempts=2)
    assert first.events == {"applied": 1, "superseded": 0, "failed": 1, "dead": 0, "out_of_scope": 0}
    assert apply(engine, max_attempts=2).events["dead"] == 1
    assert rows(engine, "SELECT last_error FROM wecom_callback_events WHERE status = 'dead'") == [
        ("ParentId 4 would put department 2 under itself (a cycle): not applied",)
    ]
    after = rows(engine, "SELECT * FROM wecom_departments ORDER BY department_id")
    assert [r for r in after if r[1] != 3] == [r for r in before if r[1] != 3]


def test_a_cycle_resolved_by_a_late_move_is_applied(engine: Engine) -> None:
    seed_tree(engine)
    apply(engine)
    store(engine, "update_party", 20, Id=2, ParentId=4)
    assert apply(engine).events["failed"] == 1
    store(engine, "update_party", 10, Id=4, ParentId=3)
    assert apply(engine).events["applied"] == 2
    assert statuses(engine) == {"applied": 6}
    assert paths(engine)[2] == ("Sales", "/1/3/4/2/")


def test_a_child_created_before_its_parent_is_placed_when_the_parent_arrives(engine: Engine) -> None:
    store(engine, "create_party", 1, Id=1, Name="Root", ParentId=0, Order=1)
    store(engine, "create_party", 3, Id=7, Name="Child", ParentId=6, Order=1)
    apply(engine)
    assert paths(engine)[7] == ("Child", None)
    store(engine, "create_party", 2, Id=6, Name="Parent", ParentId=1, Order=1)
    apply(engine)
    assert paths(engine)[7] == ("Child", "/1/6/7/")
