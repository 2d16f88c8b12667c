"""update_tag callbacks: applied member by member in any arrival order, with history; unknown tags fetched or
created from their ids; snapshots that read the tags supersede older events."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from tests.wecom.callbacks.support import CORP, SECRET, T0, apply, rows, statuses, store
from wecom.api.client import WeComClient
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import LoadOptions
from wecom.store.run_records import RunRecord
from wecom_simulator.testing import RunningSimulator

TAG_USERS = "SELECT userid FROM wecom_tag_users WHERE tag_id = :t ORDER BY userid"
TAG_PARTIES = "SELECT department_id FROM wecom_tag_departments WHERE tag_id = :t ORDER BY department_id"


def members(engine: Engine, tag_id: int) -> tuple[list[str], list[int]]:
    return [r[0] for r in rows(engine, TAG_USERS, t=tag_id)], [int(r[0]) for r in rows(engine, TAG_PARTIES, t=tag_id)]


def update_tag(engine: Engine, seconds: float, tag_id: int, **items: str) -> None:
    lists = {name: items.get(name, "") for name in ("AddUserItems", "DelUserItems", "AddPartyItems", "DelPartyItems")}
    store(engine, "update_tag", seconds, TagId=tag_id, **lists)


def test_events_apply_member_by_member_in_any_order_with_history(engine: Engine) -> None:
    update_tag(engine, 20, 7, DelUserItems="alice", AddUserItems="carol")  # arrives first
    first = apply(engine)
    assert first.events["applied"] == 1 and members(engine, 7) == (["carol"], [])
    assert rows(engine, "SELECT tag_name, is_deleted FROM wecom_tags WHERE tag_id = 7")[0][0] is None, (
        "created from the ids its event carries: no name known yet"
    )
    update_tag(engine, 10, 7, AddUserItems="alice,bob", AddPartyItems="2")  # older, arrives late
    update_tag(engine, 30, 7, DelPartyItems="2")
    late = apply(engine)
    assert late.events["applied"] == 2
    assert members(engine, 7) == (["bob", "carol"], []), "alice left at 20, after she joined at 10"
    history = rows(engine, "SELECT userid, valid_to FROM wecom_tag_users_history WHERE tag_id = 7 ORDER BY userid")
    assert [(u, end is None) for u, end in history] == [("alice", False), ("bob", True), ("carol", True)], (
        "alice held the tag from 10 to 20"
    )
    party = rows(engine, "SELECT valid_from, valid_to FROM wecom_tag_departments_history WHERE tag_id = 7")
    assert len(party) == 1 and party[0][1] is not None, "department 2 held the tag from 10 to 30"
    run = rows(engine, "SELECT tag_members_inserted, tag_members_deleted FROM wecom_sync_runs ORDER BY finished_at")
    assert run[-1] == (1, 0), "only bob joins the current rows; alice and department 2 came and went"
    assert statuses(engine) == {"applied": 3}


def test_an_unknown_tag_is_fetched_when_the_secret_may(engine: Engine, sim: RunningSimulator) -> None:
    tag = next(t for t in sim.state.org.tags.values() if t.users)
    with WeComClient(sim.base_url, CORP, SECRET, max_retries=0) as client:
        update_tag(engine, 10, tag.id, AddUserItems=tag.users[0].userid)
        update_tag(engine, 11, 999, AddUserItems="ghost")  # tag/get answers 40068: the tag is gone
        result = apply(engine, client=client)
    assert result.api_calls["tag/get"] == 2 and result.events["applied"] == 2
    assert members(engine, tag.id) == (sorted(m.userid for m in tag.users), sorted(tag.parties))
    assert rows(engine, "SELECT tag_name FROM wecom_tags WHERE tag_id = :t", t=tag.id) == [(tag.name,)]
    assert rows(engine, "SELECT COUNT(*) FROM wecom_tags WHERE tag_id = 999") == [(0,)]
    assert rows(engine, "SELECT tags_inserted FROM wecom_sync_runs") == [(1,)]


def test_a_refused_fetch_creates_the_tag_from_the_ids(engine: Engine, sim: RunningSimulator) -> None:
    sim.add_fault("tag/get", errcode=48009)
    with WeComClient(sim.base_url, CORP, SECRET, max_retries=0) as client:
        update_tag(engine, 10, 3, AddUserItems="zed", AddPartyItems="4")
        result = apply(engine, client=client)
    assert result.refused == {"tag/get": 1} and result.events["applied"] == 1
    assert members(engine, 3) == (["zed"], [4])


def test_a_snapshot_that_read_the_tags_supersedes_older_events(engine: Engine) -> None:
    update_tag(engine, 10, 7, AddUserItems="alice")
    update_tag(engine, 50, 7, AddUserItems="bob")
    loader = DirectoryLoader(engine)
    _record(loader, "withheld", {"tags": 1}, 40)  # complete, but could not read the tags: covers nothing of them
    _record(loader, "read", {}, 30)
    result = apply(engine)
    assert result.events == {"applied": 1, "superseded": 1, "failed": 0, "dead": 0, "out_of_scope": 0}
    assert members(engine, 7) == (["bob"], []), "the snapshot at 30 read the tags: the event at 10 is in it"


def _record(loader: DirectoryLoader, run_id: str, withheld: dict[str, int], seconds: float) -> None:
    with loader.engine.begin() as conn:
        loader.runs.record(
            conn,
            RunRecord("wecom_directory_sync", run_id, CORP, withheld=withheld),
            status="success",
            observed_at=T0 + timedelta(seconds=seconds),
            finished_at=T0 + timedelta(seconds=seconds),
        )


def test_a_full_sync_after_callbacks_finds_no_tag_drift(engine: Engine, sim: RunningSimulator) -> None:
    """Events applied item by item leave the tag as WeCom holds it: the next snapshot changes nothing."""
    state = sim.state
    tag = next(t for t in state.org.tags.values() if len(t.users) > 1)
    with WeComClient(sim.base_url, CORP, SECRET, max_retries=0) as client:
        update_tag(engine, 1, tag.id, AddUserItems="x")  # unknown here: fetched whole
        apply(engine, client=client)
        leaving, joining = tag.users[0].userid, next(m for m in state.org.member_list() if m not in tag.users)
        state.remove_tag_members(tag.id, {"userlist": [leaving]})
        state.add_tag_members(tag.id, {"userlist": [joining.userid], "partylist": [1]})
        update_tag(engine, 5, tag.id, AddUserItems=joining.userid, AddPartyItems="1")
        update_tag(engine, 3, tag.id, DelUserItems=leaving)
        apply(engine, client=client)
        answer = client.tag_get(tag.id)
    assert members(engine, tag.id) == (
        sorted(u["userid"] for u in answer["userlist"]),
        sorted(answer["partylist"]),
    )
    loader = DirectoryLoader(engine)
    tables = {
        "wecom_tags": [_frame("tags", tag_id=tag.id, tag_name=tag.name)],
        "wecom_tag_users": [_frame("users", tag_id=tag.id, userid=u["userid"]) for u in answer["userlist"]],
        "wecom_tag_departments": [_frame("parties", tag_id=tag.id, department_id=d) for d in answer["partylist"]],
    }
    result = loader.load_snapshot(
        tables,
        run=RunRecord("wecom_directory_sync", "full", CORP),
        observed_at=T0 + timedelta(minutes=5),
        complete=False,
        tags_listed=True,
        options=LoadOptions(max_delete_share=1.0),
    )
    assert result.plans["wecom_tag_users"].changes == result.plans["wecom_tag_departments"].changes == 0


def _frame(kind: str, **row: object):
    import pandas as pd

    from wecom.directory.tags import transform_tags

    raw = {"tagid": row["tag_id"]}
    if kind == "tags":
        raw["tagname"] = row["tag_name"]
    elif kind == "users":
        raw["userlist"] = [{"userid": row["userid"]}]
    else:
        raw["partylist"] = [row["department_id"]]
    tables = transform_tags(pd.DataFrame([raw]), CORP)
    return {"tags": tables.tags, "users": tables.tag_users, "parties": tables.tag_departments}[kind]


def test_a_tag_event_names_a_member_by_the_userid_it_had_then(engine: Engine) -> None:
    """The rename in the same second arrives first: the tag still follows the member to its new userid."""
    store(engine, "create_user", 1, UserID="ann", Name="Ann", Department="1")
    store(engine, "create_party", 0, Id=1, Name="Root", ParentId=0, Order=1)
    apply(engine)
    store(engine, "update_user", 10, UserID="ann", NewUserID="ann2")
    update_tag(engine, 10, 4, AddUserItems="ann")
    apply(engine)
    assert members(engine, 4) == (["ann2"], [])
    update_tag(engine, 5, 4, DelUserItems="ann")  # from before the rename, arriving after it was applied
    apply(engine)
    assert members(engine, 4) == (["ann2"], []), "an older removal does not undo the later addition"
