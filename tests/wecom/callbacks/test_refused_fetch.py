"""Ids-only callbacks whose fetches WeCom refuses, and fetches that withhold fields: nothing is lost.

The company is first synced with full rights from the simulator. Then the simulator's regimes take
rights away, as WeCom does for new trusted IPs (48009 on user/get and department/get) and for apps
created after 2022-06-20 (no mobile, email, gender, avatar, ...).
"""

from __future__ import annotations

from sqlalchemy import Engine

from tests.wecom.callbacks.support import CORP, apply, full_sync, rows, statuses, store, truthy
from wecom.api.client import WeComClient
from wecom_simulator.testing import RunningSimulator

MEMBER_COLUMNS = "userid, name, mobile, email, gender, avatar_url, position, row_hash, is_deleted"


def members(engine: Engine) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in rows(engine, f"SELECT {MEMBER_COLUMNS} FROM wecom_users")}


def memberships(engine: Engine, userid: str) -> list[int]:
    return [d for (d,) in rows(engine, "SELECT department_id FROM wecom_user_departments WHERE userid = :u", u=userid)]


def test_ids_only_events_whose_fetches_answer_48009_are_all_applied_and_keep_what_was_known(
    engine: Engine, sim: RunningSimulator, client: WeComClient
) -> None:
    full_sync(engine, client, seconds=0)
    before = members(engine)
    history_before = rows(engine, "SELECT COUNT(*) FROM wecom_users_history")[0][0]
    assert sum(1 for m in before.values() if m[1]) > 10, "the full sync stored mobiles"
    sim.set_regime("ids_only")  # user/get and department/get answer 48009 from now on

    leaf = max(d for d in sim.state.org.departments if not sim.state.org.children.get(d))
    moved, renamed, leaving = sorted(sim.state.org.users)[1:4]
    store(engine, "create_party", 10, Id=900, ParentId=1)
    store(engine, "update_party", 11, Id=leaf, ParentId=900)
    store(engine, "create_user", 12, UserID="newbie", Department="900")
    store(engine, "update_user", 13, UserID=moved, Department=f"1,{leaf}")
    store(engine, "update_user", 14, UserID=renamed, NewUserID=f"{renamed}_v2", Department="1")
    store(engine, "delete_user", 15, UserID=leaving)
    result = apply(engine, client=client)

    assert statuses(engine) == {"applied": 6}
    assert result.refused == {"user/get": 3, "department/get": 1}
    after = members(engine)
    unchanged = set(before) - {moved, renamed, leaving}
    assert {u: after[u] for u in unchanged} == {u: before[u] for u in unchanged}
    # The move: memberships replaced, every field kept (no member data changed: no new version for the row).
    assert after[moved] == before[moved] and sorted(memberships(engine, moved)) == sorted({1, leaf})
    # The rename: the same member under the new userid, its old userid a deleted tombstone.
    assert after[f"{renamed}_v2"][:6] == before[renamed][:6] and not truthy(after[f"{renamed}_v2"][-1])
    assert truthy(after[renamed][-1]) and memberships(engine, renamed) == []
    assert memberships(engine, f"{renamed}_v2") == [1]
    assert rows(engine, "SELECT COUNT(*) FROM wecom_users_history WHERE userid = :u", u=renamed) == [(0,)]
    # The departure keeps the member's last known values.
    assert after[leaving][:6] == before[leaving][:6] and truthy(after[leaving][-1])
    # The new member and department hold what their events carried.
    assert after["newbie"][:6] == (None,) * 6 and memberships(engine, "newbie") == [900]
    assert rows(engine, "SELECT name, parent_id, path FROM wecom_departments WHERE department_id = 900") == [
        (None, 1, "/1/900/")
    ]
    leaf_row = rows(engine, "SELECT name, path FROM wecom_departments WHERE department_id = :d", d=leaf)
    assert leaf_row == [(sim.state.org.departments[leaf].name, f"/1/900/{leaf}/")]
    # New versions only for the new member, the renamed one (its key changed) and the departure's end.
    history_after = rows(engine, "SELECT COUNT(*) FROM wecom_users_history")[0][0]
    assert history_after == history_before + 2


def test_a_fetch_that_withholds_contact_fields_keeps_them_and_writes_no_version(
    engine: Engine, sim: RunningSimulator, client: WeComClient
) -> None:
    full_sync(engine, client, seconds=0)
    before = members(engine)
    history_before = rows(engine, "SELECT COUNT(*) FROM wecom_users_history")
    sim.add_app_secret("new-app-secret", "new_app")  # created after 2022-06-20: no mobile, email, gender, ...
    userids = sorted(sim.state.org.users)[:5]
    for userid in userids:
        member = sim.state.org.users[userid]
        store(engine, "update_user", 10, UserID=userid, Department=",".join(map(str, member.department)))
    with WeComClient(sim.base_url, CORP, "new-app-secret", max_retries=0) as app:
        assert "mobile" not in app.user_get(userids[0])
        result = apply(engine, client=app)
    assert result.events["applied"] == 5 and result.api_calls["user/get"] == 1 + 5  # the probe above, then 5
    assert (result.users.updated, result.memberships.updated) == (0, 0)
    assert members(engine) == before
    assert rows(engine, "SELECT COUNT(*) FROM wecom_users_history") == history_before


def test_a_member_outside_the_visible_scope_60011_is_applied_from_its_event_and_others_are_fetched(
    engine: Engine, sim: RunningSimulator, client: WeComClient
) -> None:
    full_sync(engine, client, seconds=0)
    hidden, visible = sorted(sim.state.org.users)[:2]
    before = members(engine)[hidden]
    sim.add_fault("user/get", errcode=60011, times=None, match={"userid": hidden})
    sim.state.update_user(visible, {"position": "Fetched"})
    store(engine, "update_user", 10, UserID=hidden, Department="1")
    store(engine, "update_user", 10, UserID=visible, Department="1")
    calls = client.api_calls.get("user/get", 0)
    result = apply(engine, client=client)
    assert result.events["applied"] == 2 and result.refused == {"user/get": 1}
    assert result.api_calls["user/get"] - calls == 2
    assert members(engine)[hidden] == before and memberships(engine, hidden) == [1]
    assert members(engine)[visible][5] == "Fetched"
