"""Tags in the simulator: tag/list, tag/get, export/taguser, rights, admin edits and update_tag callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.wecom_simulator.helpers import AES_KEY, CALLBACK_TOKEN, Api, Receiver, finished_job
from tests.wecom_simulator.test_api import assert_error
from tests.wecom_simulator.test_exports import decrypt, download
from wecom.callbacks.parse import parse_event
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

APP_SECRET = "app-secret"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(
        generate_org(seed=6, members=60, departments=10), export_queue_s=0, export_run_s=0
    ) as running:
        running.add_app_secret(APP_SECRET, "new_app")
        yield running


def admin(sim: RunningSimulator, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    response = requests.request(method, f"{sim.base_url}/_sim{path}", json=body, timeout=10)
    assert response.status_code == expect, response.text
    return response.json()


def test_generated_tags_are_deterministic_and_hold_members_and_departments() -> None:
    def shape(seed: int) -> list[tuple[int, str, list[str], list[int]]]:
        org = generate_org(seed=seed, members=200, departments=40)
        return [(t.id, t.name, [m.userid for m in t.users], t.parties) for t in org.tags.values()]

    first = shape(1)
    assert first == shape(1) and first != shape(2)
    assert len(first) == 6 and all(users for _, _, users, _ in first)
    assert any(parties for *_, parties in first)
    assert generate_org(seed=1, members=200, departments=40, tags=0).tags == {}
    untagged = generate_org(seed=1, members=200, departments=40, tags=0)
    tagged = generate_org(seed=1, members=200, departments=40)
    assert [m.userid for m in untagged.member_list()] == [m.userid for m in tagged.member_list()]


def test_tag_list_and_get_answer_as_wecom_documents(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    listed = api.get("tag/list")
    assert listed["errcode"] == 0
    org = sim.state.org
    assert listed["taglist"] == [{"tagid": t.id, "tagname": t.name} for t in org.tags.values()]
    tag = next(t for t in org.tags.values() if t.users)
    got = api.get("tag/get", tagid=tag.id)
    assert got["tagname"] == tag.name and got["partylist"] == tag.parties
    assert got["userlist"] == [{"userid": m.userid, "name": org.profile(m)["name"]} for m in tag.users]
    assert_error(api.get("tag/get", tagid=999), 40068)
    assert_error(api.get("tag/get", tagid="x"), 40068)
    assert_error(api.get("tag/get"), 40058)


def test_an_app_secret_gets_no_member_names_and_only_its_visible_range(sim: RunningSimulator) -> None:
    org = sim.state.org
    tag = next(t for t in org.tags.values() if len(t.users) > 1)
    hidden = tag.users[0].department
    sim.configure(out_of_scope_departments=frozenset(hidden))
    got = Api(sim.base_url, secret=APP_SECRET).get("tag/get", tagid=tag.id)
    assert all(set(entry) == {"userid"} for entry in got["userlist"]), "names are absent, not empty"
    assert tag.users[0].userid not in {entry["userid"] for entry in got["userlist"]}
    assert not set(got["partylist"]) & set(hidden)


def test_a_new_trusted_ip_reads_tags_only_when_configured_to(sim: RunningSimulator) -> None:
    sim.set_regime("ids_only")
    api = Api(sim.base_url)
    assert_error(api.get("tag/list"), 48009)
    assert_error(api.get("tag/get", tagid=1), 48009)
    sim.configure(new_ips_read_tags=True)
    assert api.get("tag/list")["errcode"] == 0 and api.get("tag/get", tagid=1)["errcode"] == 0


def test_tag_apis_can_be_refused_to_app_secrets(sim: RunningSimulator) -> None:
    sim.configure(app_forbidden_apis=frozenset({"tag/get", "export/taguser"}))
    api = Api(sim.base_url, secret=APP_SECRET)
    assert api.get("tag/list")["errcode"] == 0
    assert_error(api.get("tag/get", tagid=1), 48002)
    assert Api(sim.base_url).get("tag/get", tagid=1)["errcode"] == 0, "the contact-sync secret still may"


def test_export_taguser_lists_members_and_departments(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    tag = next(t for t in sim.state.org.tags.values() if t.parties)
    answer = api.post("export/taguser", {"tagid": tag.id, "encoding_aeskey": AES_KEY, "block_size": 10_000})
    assert answer["errcode"] == 0
    result = finished_job(api, answer["jobid"])
    entries = [e for entry in result["data_list"] for e in decrypt(download(api, entry))["userlist"]]
    assert entries == [{"userid": m.userid, "type": 1} for m in tag.users] + [
        {"department": d, "type": 2} for d in tag.parties
    ]
    assert_error(api.post("export/taguser", {"tagid": 999, "encoding_aeskey": AES_KEY}), 40068)
    assert_error(api.post("export/taguser", {"encoding_aeskey": AES_KEY}), 40058)


def test_admin_tag_edits_and_their_update_tag_events(sim: RunningSimulator) -> None:
    with Receiver() as receiver:
        sim.configure_callbacks(url=receiver.url, token=CALLBACK_TOKEN, encoding_aes_key=AES_KEY)
        created = admin(sim, "POST", "/tags", {"tagname": "值班", "tagid": 50}, expect=201)
        assert created == {"changes": [], "tag": {"tagid": 50, "tagname": "值班", "userlist": [], "partylist": []}}
        admin(sim, "POST", "/tags", {"tagname": "值班"}, expect=409)
        members = [m.userid for m in sim.state.org.member_list()[:3]]
        added = admin(sim, "POST", "/tags/50/members", {"userlist": members, "partylist": [2]})
        assert added["changes"] == [
            {"change_type": "update_tag", "tagid": 50, "add_users": members, "del_users": [], "add_parties": [2],
             "del_parties": []},
        ]  # fmt: skip
        removed = admin(sim, "POST", "/tags/50/members/remove", {"userlist": members[:1]})
        assert removed["tag"]["userlist"][0]["userid"] == members[1]
        assert admin(sim, "POST", "/tags/50/members", {"userlist": members[1:]})["changes"] == [], "nothing new"
        admin(sim, "POST", "/tags/50/members", {"userlist": ["nobody"]}, expect=404)
        admin(sim, "PATCH", "/tags/50", {"tagname": "夜班"})
        sim.state.delete_user(members[1])
        assert [u["userid"] for u in admin(sim, "GET", "/tags/50")["userlist"]] == [members[2]]
        admin(sim, "DELETE", "/tags/50")
        admin(sim, "GET", "/tags/50", expect=404)
        sim.flush_callbacks(5)
    events = [parse_event(xml) for xml in receiver.events]
    tag_events = [e for e in events if e.change_type == "update_tag"]
    assert [(e.entity_type, e.entity_id) for e in tag_events] == [("tag", "50"), ("tag", "50")]
    first, second = (e.payload for e in tag_events)
    assert (first["AddUserItems"], first["AddPartyItems"], first["DelUserItems"]) == (",".join(members), "2", "")
    assert (second["DelUserItems"], second["AddUserItems"]) == (members[0], "")
    assert [e.change_type for e in events if e.change_type != "update_tag"] == ["delete_user"], (
        "creating, renaming and deleting a tag, or a member leaving it by deletion, send no update_tag"
    )


def test_custom_fields_reach_every_member_answer(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    member = sim.state.org.member_list()[0]
    attrs = api.get("user/get", userid=member.userid)["extattr"]["attrs"]
    assert {a["name"] for a in attrs} >= {"爱好", "个人主页", "工号", "成本中心"}
    assert next(a for a in attrs if a["name"] == "工号")["text"]["value"] == f"E{member.index:07d}"
    listed = api.get("user/list", department_id=member.department[0])["userlist"]
    assert next(u for u in listed if u["userid"] == member.userid)["extattr"]["attrs"] == attrs
    everyone = [api.get("user/get", userid=m.userid)["extattr"]["attrs"] for m in sim.state.org.member_list()]
    assert any(a["type"] == 2 and a["miniprogram"]["title"] for attrs in everyone for a in attrs)
