"""scripts/airflow_local.py (`make airflow`, the deployment suite's stack) without Airflow: its command lines.

The whole stack is started by tests/deployment/; here only the part that turns generated values into
command lines, and the simulator it starts with them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from pathlib import Path

import pytest
import requests

from scripts.airflow_local import CORP_ID, AirflowLocal, Options, Secrets, flags
from tests.support.waiting import DEADLINE_S
from wecom_simulator.cli import build_parser


def kept_secrets(home: Path, corp_secret: str) -> Secrets:
    """launcher-secrets.json as an earlier run left it."""
    home.mkdir(parents=True, exist_ok=True)
    alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    kept = Secrets(
        admin_password=f"-{secrets.token_urlsafe(12)}",
        fernet_key="unused-here",
        jwt_secret=f"-{secrets.token_urlsafe(48)}",
        corp_secret=corp_secret,
        callback_token="".join(secrets.choice(alnum) for _ in range(32)),
        encoding_aes_key="".join(secrets.choice(alnum) for _ in range(43)),
    )
    (home / "launcher-secrets.json").write_text(json.dumps(asdict(kept)))
    return kept


def test_flags_keep_a_leading_dash_inside_the_option() -> None:
    assert flags(corp_id="ww1", secret="-x-y", callback_aes_key="k") == [
        "--corp-id=ww1", "--secret=-x-y", "--callback-aes-key=k",
    ]  # fmt: skip


def test_every_value_of_the_simulator_command_is_one_name_value_word(tmp_path: Path) -> None:
    kept = kept_secrets(tmp_path / "home", corp_secret="--help")
    stack = AirflowLocal(Options(home=tmp_path / "home"))
    stack.base_url = "http://127.0.0.1:8080"
    words = stack.simulator_command()[3:]
    assert all(word.startswith("--") and "=" in word for word in words), words
    args = build_parser().parse_args(words)
    assert (args.secret, args.callback_token, args.callback_aes_key) == (
        "--help", kept.callback_token, kept.encoding_aes_key,
    )  # fmt: skip


@pytest.mark.process
def test_a_kept_secret_starting_with_a_dash_starts_the_simulator(tmp_path: Path) -> None:
    """About one token_urlsafe secret in 64 starts with '-'; kept from an earlier run, it must still work."""
    home = tmp_path / "home"
    kept = kept_secrets(home, corp_secret=f"-{secrets.token_urlsafe(24)}")
    stack = AirflowLocal(Options(home=home, members=20, departments=3))
    stack.base_url = "http://127.0.0.1:8080"  # edits would push callbacks there; this test makes none
    try:
        url = stack.start_simulator()
        query = {"corpid": CORP_ID, "corpsecret": kept.corp_secret}
        answer = requests.get(f"{url}/cgi-bin/gettoken", params=query, timeout=DEADLINE_S).json()
    finally:
        stack.stop()
    assert answer["errcode"] == 0, answer
    log = (stack.logs / "simulator.log").read_text()
    assert log.rstrip().endswith("wecom simulator: stopped"), log[-2000:]
