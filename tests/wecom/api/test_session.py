"""WeComSession: the environment's proxies and CA bundle apply as with requests' trust_env, read once per host."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from wecom.api.session import WeComSession

API = "https://qyapi.weixin.qq.com/cgi-bin/user/list?access_token=t"


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_the_environments_proxy_and_ca_bundle_apply(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("HTTPS_PROXY", "http://egress.example:3128")
    clean_environment.setenv("REQUESTS_CA_BUNDLE", "/etc/company/ca.pem")
    settings = WeComSession().merge_environment_settings(API, {}, None, None, None)
    assert settings["proxies"]["https"] == "http://egress.example:3128"
    assert settings["verify"] == "/etc/company/ca.pem"


def test_no_proxy_exempts_the_host_and_an_explicit_verify_wins(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("HTTPS_PROXY", "http://egress.example:3128")
    clean_environment.setenv("NO_PROXY", "qyapi.weixin.qq.com")
    clean_environment.setenv("CURL_CA_BUNDLE", "/etc/company/ca.pem")
    session = WeComSession()
    settings = session.merge_environment_settings(API, {}, None, False, None)
    assert "https" not in settings["proxies"]
    assert settings["verify"] is False
    other = session.merge_environment_settings("https://files.example/export.bin", {}, None, None, None)
    assert other["proxies"]["https"] == "http://egress.example:3128"


def test_without_settings_requests_defaults_hold(clean_environment: pytest.MonkeyPatch) -> None:
    settings = WeComSession().merge_environment_settings(API, {}, None, None, None)
    assert settings["proxies"] == {}
    assert settings["verify"] is True


def test_the_environment_is_read_once_per_host(clean_environment: pytest.MonkeyPatch) -> None:
    session = WeComSession()
    assert session.merge_environment_settings(API, {}, None, None, None)["proxies"] == {}
    clean_environment.setenv("HTTPS_PROXY", "http://egress.example:3128")
    assert session.merge_environment_settings(API, {}, None, None, None)["proxies"] == {}
    assert WeComSession().merge_environment_settings(API, {}, None, None, None)["proxies"]["https"]


def test_a_netrc_entry_adds_no_authorization_header(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine qyapi.weixin.qq.com login someone password hunter2\n")
    netrc.chmod(0o600)
    clean_environment.setenv("NETRC", str(netrc))
    prepared = WeComSession().prepare_request(requests.Request("GET", API))
    assert "Authorization" not in prepared.headers
