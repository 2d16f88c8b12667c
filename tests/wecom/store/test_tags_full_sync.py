"""Tags and custom fields on the full-sync path: the real simulator over HTTP, extract, transform and load into
SQLite and PostgreSQL, while WeCom's tags and custom fields change, vanish, come back or are refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from wecom.api.client import WeComClient
from wecom.api.extract import extract_directory
from wecom.errors import MassDeletionError
from wecom.pipeline import load_staged, run_record, transform_staged
from wecom.store.loader import DirectoryLoader
from wecom.store.plan import LoadOptions, LoadResult
from wecom_simulator.model import Org
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

CORP = "wwtestcorp"
LOOSE = LoadOptions(max_delete_share=1.0)


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=11, members=60, departments=12, tags=6)) as running:
        yield running


def sync(
    sim: RunningSimulator, engine: Engine, tmp_path: Path, run: str, options: LoadOptions = LOOSE
) -> tuple[LoadResult, dict]:
    with WeComClient(sim.base_url, CORP, "s3cret-value", backoff_base=0.001, backoff_max=0.01) as client:
        manifest = extract_directory(client, tmp_path / run / "raw", strategy="list")
    transform_staged(tmp_path / run / "raw", tmp_path / run / "normalized", CORP)
    record = run_record(manifest, dag_id="wecom_directory_sync", run_id=run, logical_date=None, started_at=None)
    loader = DirectoryLoader(engine)
    loader.ensure_schema()
    result = load_staged(loader, tmp_path / run / "normalized", manifest, record, options)
    return result, loader.runs.get("wecom_directory_sync", run) or {}


def query(engine: Engine, sql: str, **binds: object) -> list[tuple]:
    with engine.connect() as conn:
        return sorted((tuple(row) for row in conn.execute(text(sql), binds)), key=repr)


def tag_users(engine: Engine, tag_id: int) -> set[str]:
    return {r[0] for r in query(engine, "SELECT userid FROM wecom_tag_users WHERE tag_id = :t", t=tag_id)}


def holders(org: Org, tag_id: int) -> set[str]:
    """Who holds the tag in WeCom: its members, and everyone in a tagged department's subtree."""
    tag = org.tags[tag_id]
    subtree = {d for party in tag.parties for d in org.subtree_ids(party)}
    return {m.userid for m in tag.users} | {m.userid for m in org.member_list() if set(m.department) & subtree}


def attribute(engine: Engine, userid: str, name: str) -> tuple | None:
    sql = "SELECT attr_type, text_value, web_url FROM wecom_user_attributes WHERE userid = :u AND attr_name = :n"
    found = query(engine, sql, u=userid, n=name)
    return found[0] if found else None


def test_tags_and_custom_fields_follow_wecom(sim: RunningSimulator, target_engine: Engine, tmp_path: Path) -> None:
    state, org = sim.state, sim.state.org
    first_names = {tag.id: tag.name for tag in org.tags.values()}
    _, row = sync(sim, target_engine, tmp_path, "r1")
    assert (row["tags_seen"], row["tags_inserted"]) == (6, 6)
    assert row["tag_members_inserted"] == sum(len(t.users) + len(t.parties) for t in org.tags.values())
    for tag_id in org.tags:
        assert tag_users(target_engine, tag_id) == {m.userid for m in org.tags[tag_id].users}
        expanded = query(
            target_engine, "SELECT DISTINCT userid FROM wecom_tag_members_expanded WHERE tag_id = :t", t=tag_id
        )
        assert {r[0] for r in expanded} == holders(org, tag_id), f"tag {tag_id}"
    member = org.member_list()[0]
    assert attribute(target_engine, member.userid, "工号") == ("text", f"E{member.index:07d}", None)
    assert attribute(target_engine, member.userid, "个人主页")[0] == "web"
    assert query(target_engine, "SELECT COUNT(*) FROM wecom_user_attributes")[0][0] >= 4 * len(org.users)

    outsider = next(m.userid for m in org.member_list() if m not in org.tags[1].users)
    state.add_tag_members(1, {"userlist": [outsider]})
    leaving = org.tags[2].users[0].userid
    state.remove_tag_members(2, {"userlist": [leaving]})
    state.rename_tag(3, {"tagname": "改名的标签"})
    dropped, dropped_parties = {m.userid for m in org.tags[4].users}, len(org.tags[4].parties)
    state.delete_tag(4)
    attrs = [a for a in org.user_view(member)["extattr"]["attrs"] if a["name"] != "成本中心"]  # left out: withheld
    for attr in attrs:
        if attr["name"] == "工号":
            attr["text"]["value"] = "E-NEW"
        elif attr["name"] == "爱好":
            attr["text"]["value"] = ""  # sent empty: cleared
    state.update_user(member.userid, {"extattr": {"attrs": attrs}})
    cost_centre = attribute(target_engine, member.userid, "成本中心")

    _, row = sync(sim, target_engine, tmp_path, "r2")
    assert (row["tags_inserted"], row["tags_updated"], row["tags_deleted"], row["tags_revived"]) == (0, 1, 1, 0)
    assert row["tag_members_inserted"] == 1
    assert row["tag_members_deleted"] == 1 + len(dropped) + dropped_parties
    assert outsider in tag_users(target_engine, 1) and leaving not in tag_users(target_engine, 2)
    assert tag_users(target_engine, 4) == set(), "a deleted tag's memberships end with it"
    deleted = query(target_engine, "SELECT tag_id, tag_name FROM wecom_tags WHERE is_deleted")
    assert deleted == [(4, first_names[4])], "soft-deleted, its name kept"
    assert query(target_engine, "SELECT COUNT(*) FROM wecom_tag_members_expanded WHERE tag_id = 4") == [(0,)]
    names = query(target_engine, "SELECT valid_from, tag_name, valid_to FROM wecom_tags_history WHERE tag_id = 3")
    assert [(n, end is None) for _, n, end in sorted(names, key=lambda r: str(r[0]))] == [
        (first_names[3], False),
        ("改名的标签", True),
    ]
    closed = query(target_engine, "SELECT COUNT(*) FROM wecom_tag_users_history WHERE tag_id = 4 AND valid_to IS NULL")
    assert closed == [(0,)], "the deleted tag's membership versions are closed"
    ended = "SELECT DISTINCT ended_by FROM {} WHERE tag_id = 4 AND valid_to IS NOT NULL"
    assert query(target_engine, ended.format("wecom_tag_users_history")) == [("deleted",)]
    assert query(target_engine, ended.format("wecom_tags_history")) == [("deleted",)]
    renamed = "SELECT ended_by FROM wecom_tags_history WHERE tag_id = 3 AND valid_to IS NOT NULL"
    assert query(target_engine, renamed) == [(None,)], "a renamed tag's old version ends by the new one"
    assert attribute(target_engine, member.userid, "工号") == ("text", "E-NEW", None)
    assert attribute(target_engine, member.userid, "爱好") == ("text", None, None)
    assert attribute(target_engine, member.userid, "成本中心") == cost_centre, "withheld: kept"
    versions = query(
        target_engine,
        "SELECT text_value FROM wecom_user_attributes_history WHERE userid = :u AND attr_name = '工号'",
        u=member.userid,
    )
    assert sorted(v[0] for v in versions) == sorted([f"E{member.index:07d}", "E-NEW"])

    restored = state.add_tag({"tagid": 4, "tagname": "回来的标签"})
    state.add_tag_members(restored.id, {"userlist": sorted(dropped)[:1]})
    state.delete_user(member.userid)
    _, row = sync(sim, target_engine, tmp_path, "r3")
    assert (row["tags_revived"], row["tags_deleted"]) == (1, 0)
    assert tag_users(target_engine, 4) == set(sorted(dropped)[:1])
    assert attribute(target_engine, member.userid, "工号") is None, "a member who left takes its fields along"
    again, row = sync(sim, target_engine, tmp_path, "r4")
    assert again.rows_written == 0 and row["tag_members_inserted"] == row["tags_updated"] == 0


def test_refused_and_vanished_tags_keep_what_is_stored(
    sim: RunningSimulator, target_engine: Engine, tmp_path: Path
) -> None:
    state, org = sim.state, sim.state.org
    sync(sim, target_engine, tmp_path, "r1")
    stored = {tag_id: tag_users(target_engine, tag_id) for tag_id in org.tags}
    newcomer = next(m.userid for m in org.member_list() if all(m not in t.users for t in org.tags.values()))
    for tag_id in (1, 2, 3):
        state.add_tag_members(tag_id, {"userlist": [newcomer]})
    sim.add_fault("tag/get", errcode=60011, match={"tagid": "1"}, times=None)
    sim.add_fault("tag/get", errcode=40068, match={"tagid": "2"}, times=None)
    result, row = sync(sim, target_engine, tmp_path, "r2", LoadOptions())
    assert result.status == "success"
    assert tag_users(target_engine, 1) == stored[1], "withheld: the stored members stay"
    assert tag_users(target_engine, 2) == stored[2], "deleted during the walk: nothing lost"
    assert tag_users(target_engine, 3) == stored[3] | {newcomer}
    assert row["withheld_fields"] == '{"tags": 1}'
    assert row["degraded"] is None, "one tag of six refused (outside an app's range) is no lost right"
    assert "tag 2 was deleted during the walk (errcode 40068)" in row["message"]
    assert "members of 1 tags withheld (errcode 60011)" in row["message"]

    state.clear_faults()
    sim.add_fault("tag/list", errcode=48009, times=None)
    state.delete_tag(5)
    result, row = sync(sim, target_engine, tmp_path, "r3", LoadOptions())
    assert (row["tags_seen"], row["tags_deleted"], row["tag_members_deleted"]) == (None, 0, 0)
    assert query(target_engine, "SELECT COUNT(*) FROM wecom_tags WHERE NOT is_deleted") == [(6,)]
    assert "tag/list answered errcode 48009" in row["message"] and "trusted IPs" in row["message"]
    assert result.newly_degraded == ["tags"] and row["degraded"] == "tags", "tag/list refused: the group is lost"

    state.clear_faults()
    result, row = sync(sim, target_engine, tmp_path, "r4")
    assert row["degraded"] is None and row["tags_deleted"] == 1
    assert tag_users(target_engine, 1) == stored[1] | {newcomer}


def test_the_deletion_guard_weighs_tags_and_tag_memberships(
    sim: RunningSimulator, target_engine: Engine, tmp_path: Path
) -> None:
    state, org = sim.state, sim.state.org
    sync(sim, target_engine, tmp_path, "r1")
    sim.add_fault("tag/get", body='{"errcode": 0, "errmsg": "ok", "userlist": [], "partylist": []}', times=None)
    with pytest.raises(MassDeletionError, match=r"of \d+ tag_users"):
        sync(sim, target_engine, tmp_path, "r2", LoadOptions())
    state.clear_faults()
    for tag_id in (1, 2):
        state.delete_tag(tag_id)
    with pytest.raises(MassDeletionError, match="2 of 6 tags"):
        sync(sim, target_engine, tmp_path, "r3", LoadOptions())
    leaver = org.member_list()[0]
    state.add_tag({"tagid": 1, "tagname": "x"})
    state.add_tag({"tagid": 2, "tagname": "y"})
    sync(sim, target_engine, tmp_path, "r4")
    tagged = [m for t in org.tags.values() for m in t.users][:3]
    for member in tagged:
        if member.userid != leaver.userid and state.org.is_current(member):
            state.delete_user(member.userid)
    result, _ = sync(sim, target_engine, tmp_path, "r5", LoadOptions(max_delete_share=0.2))
    assert result.plans["wecom_tag_users"].deleted >= 1 and result.plans["wecom_tag_users"].guarded == 0, (
        "members who leave the company leave their tags: weighed as members, not as tag memberships"
    )


def test_tag_members_the_member_list_lacks_are_kept_and_recorded(
    sim: RunningSimulator, target_engine: Engine, tmp_path: Path
) -> None:
    org = sim.state.org
    gone = org.tags[1].users[0].userid
    sim.add_fault("user/get", errcode=60111, match={"userid": gone}, times=None)  # "deleted" during the walk
    with WeComClient(sim.base_url, CORP, "s3cret-value") as client:
        manifest = extract_directory(client, tmp_path / "raw", strategy="detail")
    assert manifest["complete"]
    transform_staged(tmp_path / "raw", tmp_path / "normalized", CORP)
    loader = DirectoryLoader(target_engine)
    loader.ensure_schema()
    record = run_record(manifest, dag_id="d", run_id="r1", logical_date=None, started_at=datetime.now(UTC))
    result = load_staged(loader, tmp_path / "normalized", manifest, record)
    assert result.status == "success"
    assert gone in tag_users(target_engine, 1)
    assert "1 tag members are not in the member list" in loader.runs.get("d", "r1")["message"]
