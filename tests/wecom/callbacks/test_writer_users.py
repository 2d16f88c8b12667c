"""Members from callbacks: unknown departments wait for their create_party, then die with the reason."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.wecom.callbacks.support import apply, rows, seed_tree, statuses, store


def test_a_department_created_in_the_same_batch_is_known(engine: Engine) -> None:
    store(engine, "create_user", 5, UserID="u", Name="U", Department="1")
    store(engine, "create_party", 6, Id=1, Name="Root", ParentId=0, Order=1)
    assert apply(engine).events["applied"] == 2


def test_a_member_in_an_unknown_department_waits_for_its_create_party(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="u", Name="U", Department="2,99")
    first = apply(engine)
    assert first.events == {"applied": 4, "superseded": 0, "failed": 1, "dead": 0, "out_of_scope": 0}
    assert rows(engine, "SELECT last_error FROM wecom_callback_events WHERE status = 'failed'") == [
        ("Department names department(s) not known here (99): not applied",)
    ]
    assert rows(engine, "SELECT COUNT(*) FROM wecom_users") == [(0,)]
    store(engine, "create_party", 9, Id=99, Name="Late", ParentId=1, Order=1)
    assert apply(engine).events["applied"] == 2
    assert statuses(engine) == {"applied": 6}
    assert rows(engine, "SELECT department_id FROM wecom_user_departments ORDER BY department_id") == [(2,), (99,)]


def test_a_member_in_a_department_that_never_comes_is_dead_and_others_are_applied(engine: Engine) -> None:
    seed_tree(engine)
    apply(engine)
    store(engine, "create_user", 10, UserID="lost", Name="L", Department="1,2,3,4,5,6,7,8")
    store(engine, "create_user", 11, UserID="fine", Name="F", Department="3")
    assert apply(engine, max_attempts=2).events == {
        "applied": 1,
        "superseded": 0,
        "failed": 1,
        "dead": 0,
        "out_of_scope": 0,
    }
    assert apply(engine, max_attempts=2).events["dead"] == 1
    error, attempts = rows(engine, "SELECT last_error, attempts FROM wecom_callback_events WHERE status = 'dead'")[0]
    assert (error, attempts) == ("Department names department(s) not known here (5, 6, 7, 8): not applied", 2)
    assert rows(engine, "SELECT userid FROM wecom_users") == [("fine",)]
    assert statuses(engine) == {"applied": 5, "dead": 1}


def test_an_event_without_a_tag_changes_nothing_about_it(engine: Engine) -> None:
    seed_tree(engine)
    store(engine, "create_user", 10, UserID="u", Name="U", Mobile="13800000000", Department="2", Position="P")
    apply(engine)
    store(engine, "update_user", 11, UserID="u", Alias="al")
    store(engine, "update_user", 12, UserID="u", Department="3")
    apply(engine)
    assert rows(engine, "SELECT name, mobile, position, alias FROM wecom_users") == [("U", "13800000000", "P", "al")]
    versions = rows(engine, "SELECT mobile FROM wecom_users_history ORDER BY valid_from")
    assert versions == [("13800000000",), ("13800000000",)]
