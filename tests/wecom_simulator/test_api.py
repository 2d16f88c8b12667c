"""The WeCom endpoints over real HTTP: payload shapes, tokens, errors, list_id paging, scope."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.wecom_simulator.helpers import CORP_ID, SECRET, Api
from wecom_simulator.org import Org, generate_org
from wecom_simulator.payloads import user_full
from wecom_simulator.testing import RunningSimulator, running_simulator

ERRMSG = re.compile(
    r"^.+, hint: \[[^\]]+\], from ip: ([0-9.]+), more info at https://open\.work\.weixin\.qq\.com/devtool/query\?e=(-?\d+)$"
)
DEPARTMENT_KEYS = {"id", "name", "name_en", "department_leader", "parentid", "order"}
USER_KEYS = {
    "userid", "name", "department", "order", "position", "mobile", "gender", "email", "biz_mail",
    "is_leader_in_dept", "direct_leader", "avatar", "thumb_avatar", "telephone", "alias", "address",
    "open_userid", "main_department", "extattr", "status", "qr_code", "external_position", "external_profile",
}  # fmt: skip


def assert_error(answer: dict[str, Any], errcode: int, client_ip: str = "127.0.0.1") -> None:
    assert answer["errcode"] == errcode, answer
    found = ERRMSG.match(answer["errmsg"])
    assert found and (found.group(1), int(found.group(2))) == (client_ip, errcode), answer["errmsg"]


@pytest.fixture(scope="module")
def org() -> Org:
    return generate_org(seed=11, members=120, departments=25)


@pytest.fixture(scope="module")
def shared(org: Org) -> Iterator[RunningSimulator]:
    """One simulator for the tests that only read."""
    with running_simulator(org) as sim:
        yield sim


@pytest.fixture(scope="module")
def api(shared: RunningSimulator) -> Api:
    return Api(shared.base_url)


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(generate_org(seed=11, members=120, departments=25)) as running:
        yield running


# -- tokens --------------------------------------------------------------------------------------------


def test_gettoken_answers_the_same_token_until_expiry(api: Api) -> None:
    first, second = api.gettoken(), api.gettoken()
    assert first["errcode"] == 0 and first["errmsg"] == "ok"
    assert first["access_token"] == second["access_token"] and len(first["access_token"]) >= 64
    assert 7190 <= second["expires_in"] <= 7200


@pytest.mark.parametrize(
    ("params", "errcode"),
    [({"corpsecret": "wrong"}, 40001), ({"corpid": "wwother"}, 40013), ({"corpid": ""}, 41002)],
)
def test_gettoken_rejects_bad_credentials(api: Api, params: dict[str, str], errcode: int) -> None:
    assert_error(api.gettoken(**params), errcode)


def test_missing_and_unknown_tokens(api: Api) -> None:
    answer = api.session.get(api.base + "department/simplelist", timeout=5).json()
    assert_error(answer, 41001)
    assert_error(api.get("department/simplelist", access_token="made-up"), 40014)


def test_tokens_expire_after_their_ttl() -> None:
    with running_simulator(generate_org(seed=1, members=5, departments=2), token_ttl=7200) as sim:
        clock = sim.freeze_clock()
        api = Api(sim.base_url)
        assert api.get("department/simplelist")["errcode"] == 0
        clock.advance(7199)
        assert api.get("department/simplelist")["errcode"] == 0
        clock.advance(1)
        assert_error(api.get("department/simplelist"), 42001)
        fresh = api.gettoken()
        assert fresh["access_token"] != api.token()


def test_expire_tokens_invalidates_every_issued_token(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    old = api.token()
    sim.state.expire_tokens()
    assert_error(api.get("user/get", userid="x"), 42001)
    assert api.gettoken()["access_token"] != old


# -- departments ---------------------------------------------------------------------------------------


def test_department_list_everything_in_tree_order(api: Api, org: Org) -> None:
    answer = api.get("department/list")
    assert answer["errcode"] == 0
    departments = answer["department"]
    assert len(departments) == len(org.departments)
    assert all(set(d) == DEPARTMENT_KEYS for d in departments)
    assert departments[0] == {
        "id": 1,
        "name": org.departments[1].name,
        "name_en": org.departments[1].name_en,
        "department_leader": [m.userid for m in org.departments[1].leaders],
        "parentid": 0,
        "order": org.departments[1].order,
    }
    seen: set[int] = set()
    for dept in departments:
        assert dept["parentid"] == 0 or dept["parentid"] in seen, "parents come first"
        seen.add(dept["id"])
    assert departments == api.get("department/list")["department"], "deterministic order"


def test_department_list_with_id_is_the_subtree(api: Api, org: Org) -> None:
    parent = next(d for d in org.departments if d != 1 and org.children[d])
    ids = [d["id"] for d in api.get("department/list", id=parent)["department"]]
    assert ids[0] == parent
    expected = {parent}
    for dept_id in org.subtree_ids(1):
        if org.departments[dept_id].parentid in expected:
            expected.add(dept_id)
    assert set(ids) == expected


def test_department_simplelist_and_get(api: Api, org: Org) -> None:
    simple = api.get("department/simplelist")["department_id"]
    full = api.get("department/list")["department"]
    assert simple == [{k: d[k] for k in ("id", "parentid", "order")} for d in full]
    some = full[3]
    assert api.get("department/get", id=some["id"]) == {"errcode": 0, "errmsg": "ok", "department": some}


@pytest.mark.parametrize(("value", "errcode"), [("999999", 60003), ("abc", 60123), ("-2", 60123), ("", 40058)])
def test_bad_department_ids(api: Api, value: str, errcode: int) -> None:
    assert_error(api.get("department/get", id=value), errcode)
    assert_error(api.get("user/simplelist", department_id=value), errcode)


# -- members -------------------------------------------------------------------------------------------


def busiest(org: Org) -> int:
    return max(org.departments, key=lambda d: len(org.members_in(d)))


def test_user_list_and_simplelist_hold_direct_members(api: Api, org: Org) -> None:
    dept_id = busiest(org)
    direct = [m.userid for m in org.members_in(dept_id)]
    full = api.get("user/list", department_id=dept_id)["userlist"]
    simple = api.get("user/simplelist", department_id=dept_id, fetch_child=1)["userlist"]
    assert [u["userid"] for u in full] == [u["userid"] for u in simple] == direct
    assert all(set(u) == USER_KEYS for u in full)
    assert all(set(u) == {"userid", "name", "department", "open_userid"} for u in simple)
    assert simple[0] == {k: full[0][k] for k in ("userid", "name", "department", "open_userid")}


def test_user_get_is_case_insensitive_and_matches_user_list(api: Api, org: Org) -> None:
    member = next(m for m in org.member_list() if m.userid != m.userid.lower())
    answer = api.get("user/get", userid=member.userid.upper())
    assert (answer.pop("errcode"), answer.pop("errmsg")) == (0, "ok")
    assert answer == user_full(org, member)
    listed = api.get("user/list", department_id=member.department[0])["userlist"]
    assert answer in listed


def test_user_errors(api: Api) -> None:
    assert_error(api.get("user/get", userid="nobody-here"), 60111)
    assert_error(api.get("user/get"), 40058)
    answer = api.get("user/list", department_id=987654)
    assert_error(answer, 60003)
    assert answer["userlist"] == []


# -- list_id -------------------------------------------------------------------------------------------


def all_rows(api: Api, limit: int) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    cursor, pages = "", 0
    while True:
        answer = api.post("user/list_id", {"cursor": cursor, "limit": limit})
        assert answer["errcode"] == 0, answer
        rows += answer["dept_user"]
        pages += 1
        cursor = answer.get("next_cursor", "")
        if not cursor:
            return rows, pages


def test_list_id_has_one_row_per_membership_in_pages(api: Api, org: Org) -> None:
    expected = [{"userid": m.userid, "department": d} for m in org.member_list() for d in m.department]
    rows, pages = all_rows(api, 10_000)
    assert (rows, pages) == (expected, 1)
    paged, pages = all_rows(api, 37)
    assert paged == expected and pages == -(-len(expected) // 37)
    last = api.post("user/list_id", {"limit": 10_000})
    assert last["next_cursor"] == ""


def test_list_id_last_page_may_omit_the_cursor() -> None:
    with running_simulator(generate_org(seed=1, members=10, departments=3), list_id_last_cursor="missing") as sim:
        answer = Api(sim.base_url).post("user/list_id", {"limit": 10_000})
        assert "next_cursor" not in answer and answer["dept_user"]


@pytest.mark.parametrize("limit", [0, 10_001, "10", True])
def test_list_id_limit_bounds(api: Api, limit: Any) -> None:
    assert_error(api.post("user/list_id", {"limit": limit}), 40058)


def test_stale_and_unknown_cursors_answer_50100(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    assert_error(api.post("user/list_id", {"cursor": "not-a-cursor", "limit": 5}), 50100)
    cursor = api.post("user/list_id", {"limit": 5})["next_cursor"]
    assert api.post("user/list_id", {"cursor": cursor, "limit": 5})["errcode"] == 0
    sim.state.invalidate_cursors()
    answer = api.post("user/list_id", {"cursor": cursor, "limit": 5})
    assert_error(answer, 50100)
    assert answer["dept_user"] == []


def test_cursors_expire() -> None:
    with running_simulator(generate_org(seed=1, members=20, departments=3), cursor_ttl_s=600) as sim:
        clock = sim.freeze_clock()
        api = Api(sim.base_url)
        cursor = api.post("user/list_id", {"limit": 3})["next_cursor"]
        clock.advance(599)
        assert api.post("user/list_id", {"cursor": cursor, "limit": 3})["errcode"] == 0
        clock.advance(1)
        assert_error(api.post("user/list_id", {"cursor": cursor, "limit": 3}), 50100)


# -- protocol details ----------------------------------------------------------------------------------


def test_wrong_method_and_malformed_json(api: Api) -> None:
    assert_error(api.get("user/list_id"), 43002)
    assert_error(api.raw("department/list", method="POST", body={}).json(), 43001)
    answer = api.session.post(
        api.base + "user/list_id", params={"access_token": api.token()}, data="{not json", timeout=5
    ).json()
    assert_error(answer, 47001)


def test_unknown_endpoint_is_http_404(api: Api) -> None:
    assert api.raw("user/teleport").status_code == 404


def test_errors_are_http_200(api: Api) -> None:
    response = api.raw("user/get", userid="nobody-here")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")


def test_calls_are_counted_per_endpoint(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    api.get("department/list")
    api.get("user/get", userid="x")
    api.get("user/get", userid="y")
    assert sim.calls == {"gettoken": 1, "department/list": 1, "user/get": 2}


# -- visible scope -------------------------------------------------------------------------------------


def test_out_of_scope_departments_answer_60011() -> None:
    org = generate_org(seed=11, members=120, departments=25)
    hidden = busiest(org)
    only_hidden = next(m for m in org.member_list() if m.department == (hidden,))
    with running_simulator(org, out_of_scope_departments={hidden}) as sim:
        api = Api(sim.base_url)
        for endpoint, params in [
            ("user/list", {"department_id": hidden}),
            ("user/simplelist", {"department_id": hidden}),
            ("department/get", {"id": hidden}),
            ("department/list", {"id": hidden}),
            ("user/get", {"userid": only_hidden.userid}),
        ]:
            assert_error(api.get(endpoint, **params), 60011)
        assert hidden in [d["id"] for d in api.get("department/list")["department"]]
        rows = api.post("user/list_id", {"limit": 10_000})["dept_user"]
        assert rows and all(r["department"] != hidden for r in rows)
        sim.state.set_out_of_scope_departments(set())
        assert api.get("user/list", department_id=hidden)["errcode"] == 0


def test_simulator_serves_json_with_utf8_names(api: Api) -> None:
    assert "示例科技" in api.raw("department/list").content.decode("utf-8")


def test_custom_credentials() -> None:
    with running_simulator(generate_org(seed=1, members=3, departments=2), corp_id="wwother", secret="x" * 43) as sim:
        assert Api(sim.base_url, "wwother", "x" * 43).gettoken()["errcode"] == 0
        assert_error(Api(sim.base_url, CORP_ID, SECRET).gettoken(), 40013)
