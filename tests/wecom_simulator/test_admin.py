"""The ``/_sim/`` admin API: what a benchmark or DAG test can steer in a simulator it runs as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.wecom_simulator.helpers import Api
from tests.wecom_simulator.test_api import assert_error
from wecom_simulator.org import generate_org
from wecom_simulator.testing import RunningSimulator, running_simulator


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=4, members=30, departments=6)) as running:
        yield running


class Admin:
    def __init__(self, base_url: str) -> None:
        self.base = base_url + "/_sim"

    def __call__(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = requests.request(method, self.base + path, json=body, timeout=10)
        assert response.status_code == expect, response.text
        return response.json()


@pytest.fixture
def admin(sim: RunningSimulator) -> Admin:
    return Admin(sim.base_url)


def test_stats_and_reset(sim: RunningSimulator, admin: Admin) -> None:
    api = Api(sim.base_url)
    api.get("department/list")
    stats = admin("GET", "/stats")
    assert stats["calls"] == {"gettoken": 1, "department/list": 1}
    assert (stats["throttled"], stats["members"], stats["departments"]) == (0, 30, 6)
    admin("POST", "/reset_stats")
    assert admin("GET", "/stats")["calls"] == {}


def test_faults_over_http(sim: RunningSimulator, admin: Admin) -> None:
    api = Api(sim.base_url)
    created = admin("POST", "/faults", {"endpoint": "user/get", "errcode": 45033, "times": 2}, expect=201)
    assert created["times"] == 2
    assert admin("GET", "/faults")["faults"][0]["endpoint"] == "user/get"
    assert_error(api.get("user/get", userid="x"), 45033)
    admin("DELETE", "/faults")
    assert api.get("user/get", userid="x")["errcode"] == 60111
    admin("POST", "/faults", {"errcode": 1}, expect=400)
    admin("POST", "/faults", {"endpoint": "user/get"}, expect=400)


def test_config_tokens_and_cursors(sim: RunningSimulator, admin: Admin) -> None:
    api = Api(sim.base_url)
    cursor = api.post("user/list_id", {"limit": 2})["next_cursor"]
    config = admin("PATCH", "/config", {"out_of_scope_departments": [1]})
    assert config["out_of_scope_departments"] == [1] and admin("GET", "/config") == config
    assert_error(api.get("department/get", id=1), 60011)
    admin("PATCH", "/config", {"rate_limit_per_minute": 0}, expect=400)
    admin("PATCH", "/config", {"bogus": 1}, expect=400)
    admin("POST", "/invalidate_cursors")
    assert_error(api.post("user/list_id", {"cursor": cursor, "limit": 2}), 50100)
    admin("POST", "/expire_tokens")
    assert_error(api.get("department/simplelist"), 42001)


def test_regimes_and_app_secrets_over_http(sim: RunningSimulator, admin: Admin) -> None:
    api = Api(sim.base_url)
    userid = sim.state.org.member_list()[0].userid
    assert admin("GET", "/regime") == {
        "regime": "full", "callback_form": "full", "secret_kind": "contact_sync", "app_secrets": {},
        "app_forbidden_apis": ["user/list_id"], "new_ips": [], "visible_ranges": {},
    }  # fmt: skip
    rights = admin("POST", "/regime", {"regime": "ids_only", "callback_form": "ids_only"})
    assert (rights["regime"], rights["new_ips"], rights["callback_form"]) == ("ids_only", ["*"], "ids_only")
    assert_error(api.get("user/get", userid=userid), 48009)
    rights = admin("POST", "/regime", {"regime": "withheld"})
    assert (rights["regime"], rights["secret_kind"], rights["callback_form"]) == ("withheld", "new_app", "ids_only")
    answer = api.get("user/get", userid=userid)
    assert answer["errcode"] == 0 and "mobile" not in answer
    assert_error(api.post("user/list_id", {"limit": 1}), 48002)
    for refused in ({"regime": "superuser"}, {}, {"regime": "full", "callback_form": "partial"}):
        admin("POST", "/regime", refused, expect=400)
    assert admin("GET", "/regime")["regime"] == "withheld", "a refused change leaves the rights as they were"
    rights = admin("POST", "/app_secrets", {"secret": "app-secret", "kind": "old_app"}, expect=201)
    assert rights["app_secrets"] == {"app-secret": "old_app"}
    assert "mobile" in Api(sim.base_url, secret="app-secret").get("user/get", userid=userid)
    admin("PATCH", "/config", {"visible_ranges": {"app-secret": [2]}})
    assert admin("GET", "/regime")["visible_ranges"] == {"app-secret": [2]}
    assert_error(Api(sim.base_url, secret="app-secret").get("department/get", id=1), 60011)
    admin("POST", "/app_secrets", {"secret": "x", "kind": "contact_sync"}, expect=400)
    config = admin("PATCH", "/config", {"regime": "full", "new_ips": ["127.0.0.9"]})
    assert (config["regime"], config["new_ips"]) == ("custom", ["127.0.0.9"])
    assert api.get("user/get", userid=userid)["errcode"] == 0


def test_member_round_trip_delete_and_recreate(sim: RunningSimulator, admin: Admin) -> None:
    api = Api(sim.base_url)
    userid = sorted(sim.state.org.users)[5]
    record = admin("GET", f"/users/{userid}")
    assert record["userid"].lower() == userid
    assert admin("DELETE", f"/users/{userid}")["changes"] == [
        {"change_type": "delete_user", "userid": record["userid"], "fields": []}
    ]
    assert_error(api.get("user/get", userid=userid), 60111)
    admin("GET", f"/users/{userid}", expect=404)
    admin("DELETE", f"/users/{userid}", expect=404)
    created = admin("POST", "/users", record, expect=201)
    assert created["user"] == record and created["changes"][0]["change_type"] == "create_user"
    answer = api.get("user/get", userid=userid)
    assert {k: v for k, v in answer.items() if k not in ("errcode", "errmsg")} == record


def test_member_update_rename_and_move(sim: RunningSimulator, admin: Admin) -> None:
    api = Api(sim.base_url)
    userid = sorted(sim.state.org.users)[0]
    target = max(sim.state.org.departments)
    edited = admin("PATCH", f"/users/{userid}", {"new_userid": "Moved.One", "department": [target], "name": "新名"})
    [change] = edited["changes"]
    assert change["change_type"] == "update_user" and change["userid"] == "Moved.One"
    assert {"department", "name", "main_department"} <= set(change["fields"]) and change["old_userid"]
    assert edited["user"]["department"] == [target] and edited["user"]["name"] == "新名"
    assert api.get("user/get", userid="moved.one")["name"] == "新名"
    listed = [u["userid"] for u in api.get("user/simplelist", department_id=target)["userlist"]]
    assert "Moved.One" in listed
    admin("PATCH", "/users/Moved.One", {"department": [424242]}, expect=404)
    admin("PATCH", "/users/Moved.One", {"status": 9}, expect=400)
    other = sorted(sim.state.org.users)[1]
    admin("PATCH", f"/users/{other}", {"new_userid": "MOVED.ONE"}, expect=409)
    admin("POST", "/users", {"userid": "nodept", "name": "x"}, expect=400)
    admin("POST", "/users", [1, 2], expect=400)


def test_department_crud(sim: RunningSimulator, admin: Admin) -> None:
    api = Api(sim.base_url)
    created = admin("POST", "/departments", {"name": "新部门", "name_en": "New", "parentid": 1, "order": 9}, expect=201)
    dept = created["department"]
    assert dept["parentid"] == 1 and dept["department_leader"] == []
    assert created["changes"] == [{"change_type": "create_party", "id": dept["id"], "fields": []}]
    assert api.get("department/get", id=dept["id"])["department"] == dept
    admin("POST", "/departments", {"name": "新部门", "parentid": 1}, expect=409)
    child = admin("POST", "/departments", {"id": 5000, "name": "子", "parentid": dept["id"]}, expect=201)
    assert child["department"]["id"] == 5000
    moved = admin("PATCH", "/departments/5000", {"parentid": 1, "name": "子部门"})
    assert moved["changes"][0] == {"change_type": "update_party", "id": 5000, "fields": ["name", "parentid"]}
    assert admin("GET", "/departments/5000")["parentid"] == 1
    admin("PATCH", f"/departments/{dept['id']}", {"parentid": 999_999}, expect=404)
    userid = sorted(sim.state.org.users)[2]
    admin("PATCH", f"/users/{userid}", {"department": [5000]})
    admin("DELETE", "/departments/5000", expect=409)
    admin("PATCH", f"/users/{userid}", {"department": [1]})
    assert admin("DELETE", "/departments/5000")["changes"][0]["change_type"] == "delete_party"
    assert_error(api.get("department/get", id=5000), 60003)
    admin("DELETE", "/departments/1", expect=400)
    admin("GET", "/departments/5000", expect=404)
