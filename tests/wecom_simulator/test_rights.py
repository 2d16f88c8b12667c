"""Permission regimes over real HTTP: per secret kind, per caller IP, and changed between two calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.wecom_simulator.helpers import AES_KEY, Api
from tests.wecom_simulator.test_api import USER_KEYS, assert_error
from wecom_simulator.config import SimulatorConfig
from wecom_simulator.org import generate_org
from wecom_simulator.profiles import SENSITIVE_FIELDS
from wecom_simulator.testing import RunningSimulator, running_simulator

ORG = generate_org(seed=12, members=40, departments=6)
USERID = ORG.member_list()[0].userid
NEW_APP, OLD_APP = "app-created-2023", "app-created-2021"
APPS = {NEW_APP: "new_app", OLD_APP: "old_app"}
CONTACT_SYNC = "s3cret-value"
NEW_IP = "127.0.0.2"

# Every directory endpoint with a valid request; export/get_result asks for an unknown job (40058 once allowed).
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "department/list": ("GET", {}),
    "department/simplelist": ("GET", {}),
    "department/get": ("GET", {"id": 1}),
    "user/simplelist": ("GET", {"department_id": 1}),
    "user/list": ("GET", {"department_id": 1}),
    "user/get": ("GET", {"userid": USERID}),
    "user/list_id": ("POST", {"limit": 10}),
    "export/simple_user": ("POST", {"encoding_aeskey": AES_KEY}),
    "export/user": ("POST", {"encoding_aeskey": AES_KEY}),
    "export/department": ("POST", {"encoding_aeskey": AES_KEY}),
    "export/get_result": ("GET", {"jobid": "no-such-job"}),
}
ALLOWED = {endpoint: 0 for endpoint in CALLS} | {"export/get_result": 40058}
ID_LISTS = {"department/simplelist", "user/list_id", "export/get_result"}


def call(api: Api, endpoint: str) -> dict[str, Any]:
    method, params = CALLS[endpoint]
    return api.post(endpoint, params) if method == "POST" else api.get(endpoint, **params)


def answers(api: Api) -> dict[str, int]:
    return {endpoint: call(api, endpoint)["errcode"] for endpoint in CALLS}


@pytest.fixture(scope="module")
def shared() -> Iterator[RunningSimulator]:
    with running_simulator(ORG, app_secrets=APPS, export_queue_s=0, export_run_s=0) as sim:
        yield sim


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(ORG, app_secrets=APPS, export_queue_s=0, export_run_s=0) as running:
        yield running


# -- per secret kind ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "refused"),
    [(CONTACT_SYNC, {}), (NEW_APP, {"user/list_id": 48002}), (OLD_APP, {"user/list_id": 48002})],
    ids=["contact_sync", "new_app", "old_app"],
)
def test_which_endpoints_answer_per_secret_kind(shared: RunningSimulator, secret: str, refused: dict[str, int]) -> None:
    api = Api(shared.base_url, secret=secret)
    assert answers(api) == ALLOWED | refused
    if refused:
        assert_error(call(api, "user/list_id"), 48002)


@pytest.mark.parametrize(
    ("secret", "withheld"),
    [(CONTACT_SYNC, False), (NEW_APP, True), (OLD_APP, False)],
    ids=["contact_sync", "new_app", "old_app"],
)
def test_a_new_apps_answers_lack_the_sensitive_keys(shared: RunningSimulator, secret: str, withheld: bool) -> None:
    api = Api(shared.base_url, secret=secret)
    expected = USER_KEYS - SENSITIVE_FIELDS if withheld else USER_KEYS
    got = api.get("user/get", userid=USERID)
    assert set(got) - {"errcode", "errmsg"} == expected
    listed = api.get("user/list", department_id=ORG.member_list()[0].department[0])["userlist"]
    assert listed and all(set(user) == expected for user in listed)
    reference = Api(shared.base_url).get("user/get", userid=USERID)
    assert {key: got[key] for key in expected} == {key: reference[key] for key in expected}


def test_each_secret_has_its_own_token(sim: RunningSimulator) -> None:
    tokens = {secret: Api(sim.base_url, secret=secret).token() for secret in (CONTACT_SYNC, NEW_APP, OLD_APP)}
    assert len(set(tokens.values())) == 3
    assert Api(sim.base_url, secret=NEW_APP).token() == tokens[NEW_APP], "the same token until it expires"
    new_app = Api(sim.base_url, secret=NEW_APP)
    assert "mobile" not in new_app.get("user/get", userid=USERID)
    assert "mobile" in Api(sim.base_url).get("user/get", userid=USERID), "the other secret's token is unaffected"
    sim.configure(app_secrets={OLD_APP: "old_app"})
    assert_error(new_app.get("user/get", userid=USERID), 40014)
    assert_error(new_app.gettoken(), 40001)


def test_which_apis_an_app_is_refused_is_configurable(sim: RunningSimulator) -> None:
    sim.configure(app_forbidden_apis=["export/user", "export/department"])
    app = Api(sim.base_url, secret=OLD_APP)
    assert answers(app) == ALLOWED | {"export/user": 48002, "export/department": 48002}
    assert answers(Api(sim.base_url)) == ALLOWED


def test_apps_added_while_running(sim: RunningSimulator) -> None:
    sim.add_app_secret("late-app")
    assert set(Api(sim.base_url, secret="late-app").get("user/get", userid=USERID)).isdisjoint(SENSITIVE_FIELDS)
    assert sim.state.config.app_secrets == {**APPS, "late-app": "new_app"}


# -- per caller IP -----------------------------------------------------------------------------------


def test_a_new_contact_sync_ip_may_read_the_id_lists_only(sim: RunningSimulator) -> None:
    sim.configure(new_ips=[NEW_IP])
    assert sim.state.config.regime == "custom"
    from_new_ip = Api(sim.base_url, source_ip=NEW_IP)
    refused = {endpoint: 48009 for endpoint in CALLS if endpoint not in ID_LISTS}
    assert answers(from_new_ip) == ALLOWED | refused
    assert_error(from_new_ip.get("user/get", userid=USERID), 48009, client_ip=NEW_IP)
    assert answers(Api(sim.base_url)) == ALLOWED, "127.0.0.1 was trusted before 2022-08-15"
    forwarded = Api(sim.base_url)
    forwarded.session.headers["X-Forwarded-For"] = NEW_IP
    assert forwarded.get("user/get", userid=USERID)["errcode"] == 0, "the caller IP is the TCP peer, not a header"
    app_from_new_ip = Api(sim.base_url, secret=OLD_APP, source_ip=NEW_IP)
    assert answers(app_from_new_ip) == ALLOWED | {"user/list_id": 48002}, "the IP rule is the contact-sync one's"


def test_the_ids_only_regime_is_every_caller_ip(sim: RunningSimulator) -> None:
    sim.set_regime("ids_only")
    refused = {endpoint: 48009 for endpoint in CALLS if endpoint not in ID_LISTS}
    for api in (Api(sim.base_url), Api(sim.base_url, source_ip="127.0.0.3")):
        assert answers(api) == ALLOWED | refused
    ids = Api(sim.base_url).post("user/list_id", {"limit": 10_000})["dept_user"]
    assert {row["userid"] for row in ids} == {m.userid for m in ORG.member_list()}


# -- regimes changed while running -------------------------------------------------------------------


def test_regimes_change_between_two_calls_with_one_token(sim: RunningSimulator) -> None:
    api = Api(sim.base_url)
    seen = []
    for regime in ("full", "withheld", "ids_only", "full"):
        config = sim.set_regime(regime)
        answer = api.get("user/get", userid=USERID)
        seen.append((config.regime, answer["errcode"], "mobile" in answer, call(api, "user/list_id")["errcode"]))
    assert seen == [
        ("full", 0, True, 0),
        ("withheld", 0, False, 48002),
        ("ids_only", 48009, False, 0),
        ("full", 0, True, 0),
    ]
    assert sim.calls["gettoken"] == 1, "rights belong to the secret, so the token in hand follows them"


def test_regime_names_and_settings() -> None:
    assert SimulatorConfig().regime == "full"
    withheld = SimulatorConfig.create(regime="withheld")
    assert (withheld.secret_kind, withheld.new_ips, withheld.regime) == ("new_app", frozenset(), "withheld")
    assert SimulatorConfig.create(regime="ids_only").new_ips == {"*"}
    explicit = SimulatorConfig.create(regime="ids_only", new_ips=["10.1.2.3"])
    assert (explicit.regime, explicit.is_new_ip("10.1.2.3"), explicit.is_new_ip("127.0.0.1")) == ("custom", True, False)
    assert SimulatorConfig.create(secret_kind="old_app").as_dict()["regime"] == "custom"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"regime": "superuser"}, "regime"),
        ({"secret_kind": "root"}, "secret_kind"),
        ({"app_secrets": {"x": "contact_sync"}}, "app secret kinds"),
        ({"app_secrets": {CONTACT_SYNC: "new_app"}}, "differ"),
        ({"app_forbidden_apis": ["user/get"]}, "app_forbidden_apis"),
        ({"new_ips": "127.0.0.2"}, "list of strings"),
        ({"callback_form": "partial"}, "callback_form"),
    ],
)
def test_impossible_rights_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorConfig.create(**settings)


# -- an app's visible range --------------------------------------------------------------------------


def test_an_app_with_a_visible_range_sees_only_those_subtrees() -> None:
    org = generate_org(seed=21, members=150, departments=20)
    top = min((d for d in org.departments if len(org.subtree_ids(d)) > 1), key=lambda d: len(org.subtree_ids(d)))
    visible = set(org.subtree_ids(top))
    outside = next(d for d in sorted(org.departments) if d not in visible and d != 1)
    straddling = next(m for m in org.member_list() if visible & set(m.department) and set(m.department) - visible)
    hidden = next(m for m in org.member_list() if not visible & set(m.department))
    with running_simulator(org, app_secrets=APPS, visible_ranges={OLD_APP: [top]}, app_forbidden_apis=[]) as sim:
        app, contact_sync = Api(sim.base_url, secret=OLD_APP), Api(sim.base_url)
        listed = app.get("department/list")["department"]
        assert {d["id"] for d in listed} == visible
        assert next(d for d in listed if d["id"] == top)["parentid"] == org.departments[top].parentid
        assert {d["id"] for d in app.get("department/simplelist")["department_id"]} == visible
        for endpoint, params in [
            ("department/get", {"id": outside}),
            ("department/list", {"id": outside}),
            ("user/list", {"department_id": outside}),
            ("user/get", {"userid": hidden.userid}),
        ]:
            assert_error(app.get(endpoint, **params), 60011)
        assert_error(app.get("user/get", userid="nobody-at-all"), 60111)
        seen = app.get("user/get", userid=straddling.userid)
        kept = [i for i, d in enumerate(straddling.department) if d in visible]
        assert seen["department"] == [straddling.department[i] for i in kept]
        assert seen["order"] == [straddling.order[i] for i in kept]
        assert len(seen["is_leader_in_dept"]) == len(kept)
        assert ("main_department" in seen) == (straddling.main_department in visible)
        rows = app.post("user/list_id", {"limit": 10_000})["dept_user"]
        assert rows and {r["department"] for r in rows} <= visible
        assert len(contact_sync.get("department/list")["department"]) == len(org.departments), "others see it all"
        sim.state.set_visible_range(OLD_APP, None)
        assert len(app.get("department/list")["department"]) == len(org.departments)


def test_only_app_secrets_have_visible_ranges() -> None:
    with pytest.raises(ValueError, match="visible_ranges may only name app secrets"):
        SimulatorConfig.create(visible_ranges={CONTACT_SYNC: [2]})
    with pytest.raises(ValueError, match="department ids"):
        SimulatorConfig.create(app_secrets=APPS, visible_ranges={NEW_APP: ["2"]})
    config = SimulatorConfig.create(app_secrets=APPS, visible_ranges={NEW_APP: [3, 2]})
    assert config.as_dict()["visible_ranges"] == {NEW_APP: [2, 3]}
