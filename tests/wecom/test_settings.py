"""Connection fields are validated once, with messages that name the field."""

from __future__ import annotations

import pytest

from wecom.errors import SettingsError
from wecom.settings import WeComSettings

KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ROBOT_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=robot-1"


def settings(**extra) -> WeComSettings:
    return WeComSettings.from_fields("wecom_default", host=None, login="wwcorp", password="s3cret", extra=extra)


def test_defaults() -> None:
    s = settings()
    assert (s.base_url, s.strategy, s.target_conn_id, s.agent_id, s.max_workers) == (
        "https://qyapi.weixin.qq.com",
        "auto",
        "wecom_target_db",
        None,
        8,
    )


def test_full_extra_is_parsed() -> None:
    s = settings(
        agent_id="1000002",
        callback_token="QDG6eK",
        callback_aes_secret=KEY,
        strategy="list",
        max_workers="16",
        rate_limit_per_minute=5000,
        timeout="2.5",
    )
    assert s.agent_id == 1000002
    assert s.options == {"max_workers": 16, "rate_limit_per_minute": 5000, "timeout": 2.5}
    assert s.max_workers == 16


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"callback_aes_secret": KEY[:42]}, "callback_aes_secret"),
        ({"robot_webhook_url": "not a url"}, "robot_webhook_url"),
        ({"robot_webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"}, "robot_webhook_url"),
        ({"agent_id": "abc"}, "agent_id"),
        ({"strategy": "fast"}, "strategy"),
        ({"callback_token": "not valid!"}, "callback_token"),
        ({"max_workers": "lots"}, "max_workers"),
        ({"max_workers": 0}, "max_workers"),
        ({"colour": "blue"}, "extra"),
    ],
)
def test_malformed_fields_are_named(extra: dict, field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        settings(**extra)


def test_missing_credentials_are_named() -> None:
    with pytest.raises(SettingsError, match="Corp ID"):
        WeComSettings.from_fields("c", host=None, login="", password="x", extra={})
    with pytest.raises(SettingsError, match="Secret"):
        WeComSettings.from_fields("c", host=None, login="ww", password=None, extra={})


def test_secrets_stay_out_of_repr() -> None:
    s = settings(callback_token="QDG6eK", callback_aes_secret=KEY, robot_webhook_url=ROBOT_URL)
    assert "s3cret" not in repr(s) and KEY not in repr(s) and "QDG6eK" not in repr(s) and "robot-1" not in repr(s)
    assert set(s.secrets()) == {"s3cret", KEY, "QDG6eK", ROBOT_URL, "robot-1"}


def test_the_names_of_release_0_1_still_work_this_release_with_a_warning() -> None:
    """encoding_aes_key and robot_webhook_key were renamed to names Airflow masks by itself."""
    with pytest.warns(FutureWarning, match="extra 'encoding_aes_key' is deprecated.*rename it 'callback_aes_secret'"):
        assert settings(encoding_aes_key=KEY).encoding_aes_key == KEY
    with pytest.warns(FutureWarning, match="extra 'robot_webhook_key' is deprecated.*'robot_webhook_url'"):
        old = WeComSettings.from_fields(
            "c", host="http://127.0.0.1:8081", login="ww", password="s", extra={"robot_webhook_key": "robot-1"}
        )
    assert old.robot_webhook_url == "http://127.0.0.1:8081/cgi-bin/webhook/send?key=robot-1"
    with pytest.warns(FutureWarning):
        both = settings(encoding_aes_key="x" * 43, callback_aes_secret=KEY)
    assert both.encoding_aes_key == KEY  # the current name wins


@pytest.mark.parametrize(
    ("port", "base_url"), [(None, "http://127.0.0.1"), (0, "http://127.0.0.1"), (8081, "http://127.0.0.1:8081")]
)
def test_port_zero_is_no_port(port: int | None, base_url: str) -> None:
    """Airflow 3.3's connection form sends 0 for the hidden, empty port field."""
    s = WeComSettings.from_fields("c", host="http://127.0.0.1/", port=port, login="wwcorp", password="x", extra={})
    assert s.base_url == base_url
