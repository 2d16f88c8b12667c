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
