"""change_contact callbacks: encrypted, signed, WeCom-shaped events for every edit, delivered unreliably on request."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.waiting import DEADLINE_S, wait_for
from tests.wecom_simulator.helpers import AES_KEY, CALLBACK_TOKEN, Receiver
from wecom_simulator.callbacks import CallbackVerificationError
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator

MEMBER_TAGS = [
    "UserID", "Name", "Department", "MainDepartment", "IsLeaderInDept", "DirectLeader", "Position", "Mobile",
    "Gender", "Email", "BizMail", "Status", "Avatar", "Alias", "Telephone", "Address", "ExtAttr",
]  # fmt: skip
HEADER_TAGS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "ChangeType"]


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=6, members=30, departments=6)) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def connect(sim: RunningSimulator, receiver: Receiver, **options: object) -> None:
    sim.configure_callbacks(url=receiver.url, token=CALLBACK_TOKEN, encoding_aes_key=AES_KEY, **options)


def test_every_edit_posts_its_event(sim: RunningSimulator, receiver: Receiver) -> None:
    connect(sim, receiver, verify=True)
    state = sim.state
    state.add_user({"userid": "newbie", "name": "新人", "department": [1], "mobile": "13800000000", "gender": "1"})
    state.update_user("NEWBIE", {"position": "工程师", "new_userid": "newbie2"})
    state.delete_user("newbie2")
    dept_id = state.add_department({"name": "新部门", "parentid": 1, "order": 3})[0].entity.id
    state.update_department(dept_id, {"name": "改名部门"})
    state.delete_department(dept_id)
    sim.flush_callbacks(DEADLINE_S)
    events = receiver.parsed()
    assert [e["ChangeType"] for e in events] == [
        "create_user", "update_user", "delete_user", "create_party", "update_party", "delete_party",
    ]  # fmt: skip
    created, updated, deleted, party, renamed, removed = events
    assert list(created) == HEADER_TAGS + MEMBER_TAGS
    assert (created["ToUserName"], created["FromUserName"], created["MsgType"], created["Event"]) == (
        "wwtestcorp", "sys", "event", "change_contact",
    )  # fmt: skip
    assert abs(int(created["CreateTime"]) - time.time()) < 60
    assert (created["UserID"], created["Name"], created["Department"], created["Mobile"]) == (
        "newbie", "新人", "1", "13800000000",
    )  # fmt: skip
    assert (created["Gender"], created["Status"], created["IsLeaderInDept"]) == ("1", "4", "0")
    assert {k: updated[k] for k in ("UserID", "NewUserID", "Position")} == {
        "UserID": "newbie", "NewUserID": "newbie2", "Position": "工程师",
    }  # fmt: skip
    assert "Name" not in updated, "update_user carries only what changed"
    assert deleted["UserID"] == "newbie2" and "Name" not in deleted
    assert (party["Id"], party["Name"], party["ParentId"], party["Order"]) == (str(dept_id), "新部门", "1", "3")
    assert renamed["Name"] == "改名部门" and "ParentId" not in renamed
    assert list(removed) == [*HEADER_TAGS, "Id"]
    assert all(d["delivered"] and d["attempts"] == 1 for d in sim.state.callbacks.deliveries())


def test_generated_member_event_has_ext_attrs_and_leaders(sim: RunningSimulator, receiver: Receiver) -> None:
    connect(sim, receiver)
    member = next(m for m in sim.state.org.member_list() if len(m.direct_leader) >= 1 and len(m.department) > 1)
    record = sim.state.org.user_view(member)
    sim.state.delete_user(member.userid)
    sim.state.add_user(record)
    sim.flush_callbacks(DEADLINE_S)
    created = receiver.parsed()[1]
    assert created["Department"] == ",".join(map(str, record["department"]))
    assert created["DirectLeader"] == ",".join(record["direct_leader"])
    assert created["IsLeaderInDept"] == ",".join(map(str, record["is_leader_in_dept"]))
    assert "<Type>0</Type><Text><Value>" in created["ExtAttr"] and "<Type>1</Type><Web><Title>" in created["ExtAttr"]


def test_ids_only_form_carries_only_the_ids(sim: RunningSimulator, receiver: Receiver) -> None:
    connect(sim, receiver)
    sim.set_regime("full", callback_form="ids_only")
    state = sim.state
    state.add_user({"userid": "idsonly", "name": "只有ID", "department": [1], "mobile": "13800000001"})
    state.update_user("idsonly", {"name": "改名", "position": "经理"})
    state.update_user("idsonly", {"new_userid": "idsonly2"})
    state.delete_user("idsonly2")
    dept_id = state.add_department({"name": "甲", "parentid": 1, "order": 5})[0].entity.id
    state.update_department(dept_id, {"name": "乙", "order": 9})
    new_parent = max(d for d in state.org.departments if d != dept_id)
    state.update_department(dept_id, {"parentid": new_parent, "name": "丙"})
    state.delete_department(dept_id)
    sim.flush_callbacks(DEADLINE_S)
    events = receiver.parsed()
    bodies = [(e["ChangeType"], {k: v for k, v in e.items() if k not in HEADER_TAGS}) for e in events]
    assert bodies == [
        ("create_user", {"UserID": "idsonly", "Department": "1"}),
        ("update_user", {"UserID": "idsonly", "Department": "1"}),
        ("update_user", {"UserID": "idsonly", "NewUserID": "idsonly2", "Department": "1"}),
        ("delete_user", {"UserID": "idsonly2"}),
        ("create_party", {"Id": str(dept_id), "ParentId": "1"}),
        ("update_party", {"Id": str(dept_id), "ParentId": str(new_parent)}),
        ("delete_party", {"Id": str(dept_id)}),
    ], "a name/order-only party change sends nothing; a move sends Id and ParentId only"
    assert all(list(e)[: len(HEADER_TAGS)] == HEADER_TAGS for e in events)


def test_the_callback_form_changes_between_two_edits(sim: RunningSimulator, receiver: Receiver) -> None:
    connect(sim, receiver)
    userid = sim.state.org.member_list()[0].userid
    sim.state.update_user(userid, {"position": "前"})
    sim.set_regime("full", callback_form="ids_only")
    sim.state.update_user(userid, {"position": "后"})
    sim.set_regime("full", callback_form="full")
    sim.state.update_user(userid, {"position": "再"})
    sim.flush_callbacks(DEADLINE_S)
    assert [e.get("Position") for e in receiver.parsed()] == ["前", None, "再"]


def test_failed_deliveries_are_retried_three_times_in_all(sim: RunningSimulator, receiver: Receiver) -> None:
    connect(sim, receiver, retry_interval_s=0.01)
    receiver.fail_next = 2
    sim.state.delete_user(sorted(sim.state.org.users)[0])
    sim.flush_callbacks(DEADLINE_S)
    [delivery] = sim.state.callbacks.deliveries()
    assert (delivery["attempts"], delivery["statuses"], delivery["delivered"]) == (3, [500, 500, 200], True)
    receiver.fail_next = 5
    sim.state.delete_user(sorted(sim.state.org.users)[0])
    sim.flush_callbacks(DEADLINE_S)
    assert sim.state.callbacks.deliveries()[1]["statuses"] == [500, 500, 500]
    assert receiver.posts == 6 and len(receiver.events) == 1


def test_slow_receivers_time_out_and_get_retried(sim: RunningSimulator, receiver: Receiver) -> None:
    # the retry must be answered within timeout_s: a second, however loaded the machine
    connect(sim, receiver, timeout_s=1.0, retry_interval_s=0)
    receiver.hold_next = 1
    sim.state.delete_user(sorted(sim.state.org.users)[0])
    sim.flush_callbacks(DEADLINE_S)
    [delivery] = sim.state.callbacks.deliveries()
    assert delivery["statuses"] == ["ReadTimeout", 200]
    assert len(receiver.events) == 1
    receiver.release()
    wait_for(lambda: len(receiver.events) == 2, DEADLINE_S, "the held request, answered late: a duplicate, as on WeCom")


def test_duplicates_shuffle_and_delay(sim: RunningSimulator, receiver: Receiver) -> None:
    connect(sim, receiver, duplicates=1, shuffle=True, delay_s=30, batch_window_s=5)
    clock = sim.freeze_clock()
    userids = [m.userid for m in sim.state.org.member_list()[:12]]
    for userid in userids:
        sim.state.update_user(userid, {"position": f"P-{userid}"})
    clock.advance(29.9)
    with pytest.raises(TimeoutError):
        sim.flush_callbacks(0.5)
    assert receiver.posts == 0, "late: nothing before delay_s"
    clock.advance(0.1)
    with pytest.raises(TimeoutError):
        sim.flush_callbacks(0.5)
    assert receiver.posts == 0, "due, but the batch window gathers first"
    clock.advance(5)
    sim.flush_callbacks(DEADLINE_S)
    received = [e["UserID"] for e in receiver.parsed()]
    assert sorted(received) == sorted(userids * 2)
    assert len(set(receiver.events)) == len(userids), "each duplicate decrypts to the same message"
    assert received != [u for u in userids for _ in range(2)], "shuffled"


def test_no_callbacks_without_configuration_or_after_disabling(sim: RunningSimulator, receiver: Receiver) -> None:
    sim.state.delete_user(sorted(sim.state.org.users)[0])
    connect(sim, receiver)
    sim.state.disable_callbacks()
    sim.state.delete_user(sorted(sim.state.org.users)[0])
    sim.flush_callbacks(1)
    assert receiver.posts == 0


def test_url_check_failure_is_reported(sim: RunningSimulator) -> None:
    with Receiver(token="otherToken") as wrong, pytest.raises(CallbackVerificationError):
        connect(sim, wrong, verify=True)


def test_flush_times_out_while_deliveries_are_pending(sim: RunningSimulator, receiver: Receiver) -> None:
    connect(sim, receiver, delay_s=1.0)
    sim.freeze_clock()
    sim.state.delete_user(sorted(sim.state.org.users)[0])
    with pytest.raises(TimeoutError):
        sim.flush_callbacks(0.1)


def test_callbacks_over_the_admin_api(sim: RunningSimulator, receiver: Receiver) -> None:
    admin = sim.base_url + "/_sim"
    body = {"url": receiver.url, "token": CALLBACK_TOKEN, "encoding_aes_key": AES_KEY, "ids_only": True}
    configured = requests.post(admin + "/callbacks", json={**body, "verify": True}, timeout=5).json()
    assert configured["callback_form"] == "ids_only" and "token" not in configured
    userid = sim.state.org.member_list()[0].userid
    requests.patch(f"{admin}/users/{userid}", json={"name": "改"}, timeout=5).raise_for_status()
    flushed = requests.post(admin + "/callbacks/flush", json={"timeout": DEADLINE_S}, timeout=DEADLINE_S + 10)
    assert flushed.json() == {"ok": True}
    listing = requests.get(admin + "/callbacks", timeout=5).json()
    assert [d["change_type"] for d in listing["deliveries"]] == ["update_user"]
    assert listing["callback_form"] == "ids_only"
    assert list(receiver.parsed()[0])[len(HEADER_TAGS) :] == ["UserID", "Department"]
    bad = requests.post(admin + "/callbacks", json={**body, "encoding_aes_key": "short"}, timeout=5)
    assert bad.status_code == 400
    wrong = requests.post(admin + "/callbacks", json={**body, "token": "nope", "verify": True}, timeout=5)
    assert wrong.status_code == 400
    assert requests.delete(admin + "/callbacks", timeout=5).json() == {"ok": True}
