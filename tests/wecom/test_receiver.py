"""The callback receiver over HTTP: verification, events, duplicates, every bad input, outages."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.wecom.test_callback_events import EVENTS, event_xml
from tests.wecom.test_crypto import (
    AES_KEY,
    CORP_ID,
    REQ_DATA,
    REQ_MSG_SIG,
    REQ_NONCE,
    REQ_TIMESTAMP,
    TOKEN,
    VERIFY_ECHOSTR,
    VERIFY_MSG_SIG,
    VERIFY_NONCE,
    VERIFY_PLAINTEXT,
    VERIFY_TIMESTAMP,
    raw_aes,
)
from wecom.callback_events import dedup_key
from wecom.crypto import WeComCrypto, decode_aes_key
from wecom.hooks.target_db import create_target_engine, target_url
from wecom.receiver import (
    AIRFLOW_URL_PREFIX,
    ReceiverConfig,
    UnknownConnectionError,
    airflow_resolver,
    create_receiver_app,
)

CONN_ID = "wecom_default"
URL = f"/wecom/callback/{CONN_ID}"
CRYPTO = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
MEMBER_EVENT = EVENTS["create_user_full"][0]
SECRETS = (TOKEN, AES_KEY, "13800000000", "zhangsan")


class Resolver:
    """Maps conn ids to configs; tests swap the config to simulate outages and fixes."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.configs = {CONN_ID: config}

    def __call__(self, conn_id: str) -> ReceiverConfig:
        if conn_id not in self.configs:
            raise UnknownConnectionError(f"no connection {conn_id!r}")
        return self.configs[conn_id]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}", timeout_s=0.5)
    yield engine
    engine.dispose()


@pytest.fixture
def resolver(engine: Engine) -> Resolver:
    return Resolver(ReceiverConfig(corp_id=CORP_ID, token=TOKEN, encoding_aes_key=AES_KEY, engine=engine))


@pytest.fixture
def client(resolver: Resolver) -> Iterator[TestClient]:
    with TestClient(create_receiver_app(resolver, cache_ttl_s=0)) as client:
        yield client


def stored(engine: Engine) -> list[dict]:
    with engine.connect() as connection:
        if not connection.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'wecom_callback_events'")).all():
            return []
        result = connection.execute(text("SELECT * FROM wecom_callback_events ORDER BY event_id"))
        return [dict(row._mapping) for row in result]


def envelope(
    plaintext: str,
    *,
    crypto: WeComCrypto = CRYPTO,
    to_user: str | None = CORP_ID,
    agent_id: str | None = "1000002",
    timestamp: str | None = None,
) -> tuple[str, dict[str, str]]:
    """A POST body and query as WeCom sends them (AgentID may be empty or absent)."""
    encrypted, signature, timestamp, nonce = crypto.encrypt(plaintext, timestamp=timestamp)
    return signed_body(encrypted, to_user=to_user, agent_id=agent_id), {
        "msg_signature": signature,
        "timestamp": timestamp,
        "nonce": nonce,
    }


def signed_body(encrypted: str, *, to_user: str | None = CORP_ID, agent_id: str | None = "1000002") -> str:
    to_user_xml = "" if to_user is None else f"<ToUserName><![CDATA[{to_user}]]></ToUserName>"
    agent_xml = "" if agent_id is None else f"<AgentID><![CDATA[{agent_id}]]></AgentID>"
    return f"<xml>{to_user_xml}{agent_xml}<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"


def without_secrets(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.name == "wecom.receiver"]
    for message in messages:
        for secret in SECRETS:
            assert secret not in message
    return messages


# URL verification


def test_url_verification_with_wecoms_published_sample(client: TestClient, resolver: Resolver) -> None:
    resolver.configs[CONN_ID] = replace(resolver.configs[CONN_ID], timestamp_window_s=0)
    query = (
        f"msg_signature={VERIFY_MSG_SIG}&timestamp={VERIFY_TIMESTAMP}&nonce={VERIFY_NONCE}"
        f"&echostr={quote(VERIFY_ECHOSTR, safe='')}"
    )
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 200
    assert response.content == VERIFY_PLAINTEXT.encode()
    assert response.headers["content-type"].startswith("text/plain")


def test_url_verification_tolerates_an_unescaped_plus(client: TestClient) -> None:
    for attempt in range(50):  # find a ciphertext with a "+" in it
        echostr, signature, timestamp, nonce = CRYPTO.encrypt(f"echo{attempt}")
        if "+" in echostr:
            break
    query = f"msg_signature={signature}&timestamp={timestamp}&nonce={nonce}&echostr={echostr}"
    response = client.get(f"{URL}?{query}")
    assert (response.status_code, response.text) == (200, f"echo{attempt}")


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"msg_signature": "0" * 40}, 403),
        ({"msg_signature": None}, 403),
        ({"nonce": None}, 403),
        ({"echostr": None}, 400),
        ({"timestamp": "1409659589"}, 403),
    ],
)
def test_url_verification_rejections(
    client: TestClient, caplog: pytest.LogCaptureFixture, change: dict, status: int
) -> None:
    echostr, signature, timestamp, nonce = CRYPTO.encrypt("echo")
    params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr} | change
    if "timestamp" in change:  # a validly signed but stale request
        params["msg_signature"] = CRYPTO.signature(change["timestamp"], nonce, echostr)
    response = client.get(URL, params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == status
    assert "echo" not in response.text
    assert len(without_secrets(caplog)) == 1


# Events


@pytest.mark.parametrize("name", list(EVENTS))
def test_every_change_type_is_stored_with_its_columns(client: TestClient, engine: Engine, name: str) -> None:
    xml, change_type, entity_type, entity_id, new_entity_id, status = EVENTS[name]
    body, params = envelope(xml)
    response = client.post(URL, params=params, content=body)
    assert (response.status_code, response.text) == (200, "success")
    (row,) = stored(engine)
    assert (row["conn_id"], row["corp_id"], row["dedup_key"]) == (CONN_ID, CORP_ID, dedup_key(xml))
    assert (row["change_type"], row["entity_type"], row["entity_id"]) == (change_type, entity_type, entity_id)
    assert (row["new_entity_id"], row["status"], row["delivery_count"]) == (new_entity_id, status, 1)
    assert json.loads(row["payload"])["ChangeType"] == change_type


@pytest.mark.parametrize("agent_id", ["", None])
def test_empty_or_missing_agent_id_and_missing_to_user_are_accepted(
    client: TestClient, engine: Engine, agent_id: str | None
) -> None:
    body, params = envelope(MEMBER_EVENT, agent_id=agent_id, to_user=None if agent_id is None else CORP_ID)
    assert client.post(URL, params=params, content=body).status_code == 200
    assert len(stored(engine)) == 1


def test_wecoms_published_post_sample_is_stored_as_ignored(
    client: TestClient, resolver: Resolver, engine: Engine
) -> None:
    resolver.configs[CONN_ID] = replace(resolver.configs[CONN_ID], timestamp_window_s=0)
    params = {"msg_signature": REQ_MSG_SIG, "timestamp": REQ_TIMESTAMP, "nonce": REQ_NONCE}
    response = client.post(URL, params=params, content=REQ_DATA)
    assert (response.status_code, response.text) == (200, "success")
    (row,) = stored(engine)
    assert (row["change_type"], row["status"]) == ("text", "ignored")
    assert json.loads(row["payload"])["Content"] == "hello"


def test_duplicates_are_stored_once_and_acknowledged_each_time(client: TestClient, engine: Engine) -> None:
    body, params = envelope(MEMBER_EVENT)
    retry_body, retry_params = envelope(MEMBER_EVENT)  # WeCom re-encrypts: other bytes, same message
    assert body != retry_body
    for b, p in [(body, params), (body, params), (retry_body, retry_params)]:
        response = client.post(URL, params=p, content=b)
        assert (response.status_code, response.text) == (200, "success")
    (row,) = stored(engine)
    assert row["delivery_count"] == 3


def test_concurrent_posts_lose_nothing(client: TestClient, engine: Engine) -> None:
    messages = [event_xml("update_user", f"<UserID>u{i}</UserID>") for i in range(60)]
    requests = [envelope(m) for m in messages + messages[:20]]

    def post(request: tuple[str, dict[str, str]]) -> int:
        return client.post(URL, params=request[1], content=request[0]).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(post, requests)) == {200}
    rows = stored(engine)
    assert len(rows) == 60
    assert sum(r["delivery_count"] for r in rows) == 80


# Bad input: a 4xx, nothing stored, one log line naming the reason and no secret


def signed_over(encrypted: str) -> tuple[str, dict[str, str]]:
    """A body whose signature is valid for whatever ``encrypted`` holds."""
    timestamp, nonce = str(int(time.time())), "777"
    params = {"msg_signature": CRYPTO.signature(timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce}
    return signed_body(encrypted), params


def badly_padded() -> str:
    """Valid framing for our corp, but the last byte claims 0 bytes of padding."""
    framed = b"r" * 16 + (3).to_bytes(4, "big") + b"abc" + CORP_ID.encode()
    plain = framed + b"\x01" * (64 - len(framed) - 1) + b"\x00"
    return base64.b64encode(raw_aes(decode_aes_key(AES_KEY), plain)).decode()


def valid_query() -> dict[str, str]:
    return envelope(MEMBER_EVENT)[1]


# name -> (request factory, status, what the log line says)
BAD_INPUTS: dict[str, tuple[Callable[[], tuple[str, dict[str, str]]], int, str]] = {
    "wrong signature": (
        lambda: (envelope(MEMBER_EVENT)[0], valid_query() | {"msg_signature": "0" * 40}),
        403,
        "msg_signature does not match",
    ),
    "missing signature": (lambda: (envelope(MEMBER_EVENT)[0], {"timestamp": "1", "nonce": "1"}), 403, "missing"),
    "stale timestamp": (lambda: envelope(MEMBER_EVENT, timestamp=str(int(time.time()) - 400)), 403, "window"),
    "future timestamp": (lambda: envelope(MEMBER_EVENT, timestamp=str(int(time.time()) + 3600)), 403, "window"),
    "non-numeric timestamp": (lambda: envelope(MEMBER_EVENT, timestamp="soon"), 403, "not a number"),
    "body not XML": (lambda: ("hello=world", valid_query()), 400, "not XML"),
    "empty body": (lambda: ("", valid_query()), 400, "not XML"),
    "XML with entity declarations": (
        lambda: ('<!DOCTYPE xml [<!ENTITY e "QUJD">]><xml><Encrypt>&e;</Encrypt></xml>', signed_over("QUJD")[1]),
        400,
        "DTD",
    ),
    "billion laughs": (
        lambda: (
            '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><xml><Encrypt>&c;</Encrypt></xml>',
            valid_query(),
        ),
        400,
        "DTD",
    ),
    "no Encrypt": (lambda: (f"<xml><ToUserName>{CORP_ID}</ToUserName></xml>", valid_query()), 400, "no Encrypt"),
    "Encrypt not base64": (lambda: signed_over("this is not base64!"), 400, "base64"),
    "Encrypt misaligned": (lambda: signed_over("QUJDREVGR0g="), 400, "block size"),
    "Encrypt badly padded": (lambda: signed_over(badly_padded()), 400, "padding"),
    "another corp's message": (
        lambda: envelope(MEMBER_EVENT, crypto=WeComCrypto(TOKEN, AES_KEY, "wwothercorp0000000")),
        403,
        "receive id",
    ),
    "ToUserName mismatch": (lambda: envelope(MEMBER_EVENT, to_user="wwothercorp0000000"), 403, "ToUserName"),
    "decrypted event not XML": (lambda: envelope("UserID=zhangsan"), 400, "well-formed"),
    "decrypted event with a DTD": (
        lambda: envelope('<!DOCTYPE xml [<!ENTITY z "zhangsan">]><xml>&z;</xml>'),
        400,
        "DTD",
    ),
    "decrypted event without UserID": (lambda: envelope(event_xml("delete_user", "")), 400, "UserID"),
    "body over the limit": (
        lambda: envelope(event_xml("update_user", "<UserID>u</UserID><Name>" + "x" * 70_000 + "</Name>")),
        413,
        "exceeds",
    ),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_refused_and_nothing_stored(
    client: TestClient, engine: Engine, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    make, status, reason = BAD_INPUTS[name]
    body, params = make()
    caplog.set_level(logging.INFO, logger="wecom.receiver")
    response = client.post(URL, params=params, content=body)
    assert response.status_code == status
    assert "success" not in response.text and "zhangsan" not in response.text
    (line,) = without_secrets(caplog)
    assert reason in line and f"rejected with {status}" in line
    assert stored(engine) == []


def test_streamed_body_over_the_limit_without_content_length(
    client: TestClient, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    body, params = envelope(event_xml("update_user", "<UserID>u</UserID><Name>" + "x" * 70_000 + "</Name>"))

    def chunks() -> Iterator[bytes]:
        data = body.encode()
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    response = client.post(URL, params=params, content=chunks())
    assert response.status_code == 413
    assert "exceeds" in without_secrets(caplog)[0]
    assert stored(engine) == []


def test_limit_is_configurable(client: TestClient, resolver: Resolver, engine: Engine) -> None:
    body, params = envelope(MEMBER_EVENT)
    resolver.configs[CONN_ID] = replace(resolver.configs[CONN_ID], max_body_bytes=len(body) - 1)
    assert client.post(URL, params=params, content=body).status_code == 413
    resolver.configs[CONN_ID] = replace(resolver.configs[CONN_ID], max_body_bytes=len(body))
    assert client.post(URL, params=params, content=body).status_code == 200


def test_unknown_conn_id_is_404(client: TestClient, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    body, params = envelope(MEMBER_EVENT)
    assert client.post("/wecom/callback/nope", params=params, content=body).status_code == 404
    assert client.get("/wecom/callback/nope", params=params | {"echostr": "x"}).status_code == 404
    assert len(without_secrets(caplog)) == 2
    assert stored(engine) == []


def test_configs_and_failures_are_cached_for_the_ttl(resolver: Resolver, engine: Engine) -> None:
    calls: list[str] = []

    def counting(conn_id: str) -> ReceiverConfig:
        calls.append(conn_id)
        return resolver(conn_id)

    body, params = envelope(MEMBER_EVENT)
    for ttl, expected_calls in [(60, 2), (0, 6)]:
        calls.clear()
        with TestClient(create_receiver_app(counting, cache_ttl_s=ttl)) as client:
            for url in [URL, URL, URL, "/wecom/callback/nope", "/wecom/callback/nope", "/wecom/callback/nope"]:
                client.post(url, params=params, content=body)
        assert len(calls) == expected_calls


def test_resolver_failures(client: TestClient, resolver: Resolver, engine: Engine) -> None:
    body, params = envelope(MEMBER_EVENT)

    def broken(conn_id: str) -> ReceiverConfig:
        raise ConnectionError("metastore down")

    def misconfigured(conn_id: str) -> ReceiverConfig:
        return ReceiverConfig(corp_id=CORP_ID, token=TOKEN, encoding_aes_key=AES_KEY[:42], engine=engine)

    app = create_receiver_app(broken)
    with TestClient(app) as other:
        assert other.post(URL, params=params, content=body).status_code == 503
    with TestClient(create_receiver_app(misconfigured)) as other:
        assert other.post(URL, params=params, content=body).status_code == 500
    assert stored(engine) == []


# Database outage: 503 so WeCom retries; the retried delivery is stored once the database is back


def test_unreachable_database_answers_503_then_the_retry_is_stored(
    client: TestClient, resolver: Resolver, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = resolver.configs[CONN_ID]
    unreachable = create_target_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'target.db'}", timeout_s=0.5)
    resolver.configs[CONN_ID] = replace(good, engine=unreachable)
    body, params = envelope(MEMBER_EVENT)
    response = client.post(URL, params=params, content=body)
    assert response.status_code == 503
    assert "database unavailable" in without_secrets(caplog)[0]
    resolver.configs[CONN_ID] = good
    response = client.post(URL, params=params, content=body)
    assert (response.status_code, response.text) == (200, "success")
    (row,) = stored(engine)
    assert row["delivery_count"] == 1


def test_locked_database_answers_503_and_stores_nothing_half_way(client: TestClient, engine: Engine) -> None:
    first, first_params = envelope(EVENTS["delete_user"][0])
    assert client.post(URL, params=first_params, content=first).status_code == 200
    body, params = envelope(MEMBER_EVENT)
    with engine.connect() as blocker:
        blocker.exec_driver_sql("BEGIN EXCLUSIVE")
        started = time.monotonic()
        assert client.post(URL, params=params, content=body).status_code == 503
        assert time.monotonic() - started < 3
        blocker.exec_driver_sql("ROLLBACK")
    assert len(stored(engine)) == 1
    assert client.post(URL, params=params, content=body).status_code == 200
    assert len(stored(engine)) == 2


@pytest.mark.postgres
def test_closed_postgres_port_answers_503(client: TestClient, resolver: Resolver, postgres_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = create_target_engine(f"postgresql+psycopg2://u:p@127.0.0.1:{port}/db", timeout_s=1)
    resolver.configs[CONN_ID] = replace(resolver.configs[CONN_ID], engine=down)
    body, params = envelope(MEMBER_EVENT)
    assert client.post(URL, params=params, content=body).status_code == 503
    up = create_target_engine(postgres_url, timeout_s=5)
    with up.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS wecom_callback_events"))
    resolver.configs[CONN_ID] = replace(resolver.configs[CONN_ID], engine=up)
    assert client.post(URL, params=params, content=body).status_code == 200
    with up.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM wecom_callback_events")).scalar_one() == 1
    up.dispose()


# Mounting in Airflow and reading Airflow connections


def test_mounted_under_the_airflow_url_prefix(resolver: Resolver, engine: Engine) -> None:
    parent = FastAPI()
    parent.mount(AIRFLOW_URL_PREFIX, create_receiver_app(resolver, path_prefix=""))
    body, params = envelope(MEMBER_EVENT)
    with TestClient(parent) as client:
        assert client.post(URL, params=params, content=body).text == "success"
    assert len(stored(engine)) == 1


def wecom_conn_env(tmp_path: Path, **extra: object) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_WECOM_DEFAULT": json.dumps(
            {
                "conn_type": "wecom",
                "login": CORP_ID,
                "password": "corp-secret-value",
                "extra": {"callback_token": TOKEN, "encoding_aes_key": AES_KEY, **extra},
            }
        ),
        "AIRFLOW_CONN_WECOM_TARGET_DB": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "target.db")}),
    }


def test_airflow_resolver_reads_env_connections_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in wecom_conn_env(tmp_path, callback_max_body_bytes=5000).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIRFLOW_CONN_NOT_CALLBACK", json.dumps({"conn_type": "http", "host": "x"}))
    resolve = airflow_resolver()
    config = resolve(CONN_ID)
    assert (config.corp_id, config.max_body_bytes, config.timestamp_window_s) == (CORP_ID, 5000, 300)
    assert config.engine.url.database == str(tmp_path / "target.db")
    assert TOKEN not in repr(config) and AES_KEY not in repr(config) and "corp-secret" not in repr(config)
    for missing in ["nope", "not_callback"]:
        with pytest.raises(UnknownConnectionError):
            resolve(missing)
    body, params = envelope(MEMBER_EVENT)
    with TestClient(create_receiver_app(resolve)) as client:
        assert client.post(URL, params=params, content=body).status_code == 200
        assert client.post("/wecom/callback/not_callback", params=params, content=body).status_code == 404


def test_airflow_resolver_rereads_the_connection_and_keeps_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in wecom_conn_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    resolve = airflow_resolver()
    first = resolve(CONN_ID)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WECOM_DEFAULT",
        json.dumps(
            {"conn_type": "wecom", "login": CORP_ID, "extra": {"callback_token": "other", "encoding_aes_key": AES_KEY}}
        ),
    )
    second = resolve(CONN_ID)
    assert (first.token, second.token) == (TOKEN, "other")
    assert second.engine is first.engine


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"target_conn_id": "absent_db"}, "absent_db"),
        ({"callback_timestamp_window_s": "soon"}, "callback_timestamp_window_s"),
        ({"encoding_aes_key": AES_KEY[:42]}, "encoding_aes_key"),
    ],
)
def test_airflow_resolver_configuration_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: dict, match: str
) -> None:
    for key, value in wecom_conn_env(tmp_path, **extra).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=match):
        airflow_resolver()(CONN_ID)


@pytest.mark.parametrize(
    ("conn", "url"),
    [
        (SimpleNamespace(conn_type="sqlite", host="/data/t.db", schema=None), "sqlite:////data/t.db"),
        (SimpleNamespace(conn_type="sqlite", host="", schema="/data/t.db"), "sqlite:////data/t.db"),
        (
            SimpleNamespace(
                conn_type="postgres",
                host="db.example",
                schema="dir",
                login="etl",
                password="p@ss:/word",
                port=6543,
                extra_dejson={"sslmode": "require", "cursor": "realdictcursor"},
            ),
            "postgresql+psycopg2://etl:p%40ss%3A%2Fword@db.example:6543/dir?sslmode=require",
        ),
    ],
)
def test_target_url_from_airflow_connections(conn: SimpleNamespace, url: str) -> None:
    conn.conn_id = "t"
    assert target_url(conn).render_as_string(hide_password=False) == url


def test_target_url_refuses_other_types() -> None:
    for conn in [
        SimpleNamespace(conn_id="t", conn_type="mysql", host="h", schema="s"),
        SimpleNamespace(conn_id="t", conn_type="sqlite", host="", schema=""),
    ]:
        with pytest.raises(ValueError, match="'t'"):
            target_url(conn)


def test_sqlite_engine_uses_wal(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2


# The standalone CLI: a real uvicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_standalone_cli_serves_over_http(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env |= wecom_conn_env(tmp_path) | {"PYTHONPATH": "plugins", "AIRFLOW_HOME": str(tmp_path / "airflow")}
    command = [
        sys.executable,
        "-m",
        "wecom.receiver",
        "--conn-id",
        CONN_ID,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, env=env, cwd=Path(__file__).parents[2], stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        echostr, signature, timestamp, nonce = CRYPTO.encrypt("hello-cli")
        query = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
        response = httpx.get(f"{base}{URL}", params=query)
        assert (response.status_code, response.text) == (200, "hello-cli")
        body, params = envelope(MEMBER_EVENT)
        assert httpx.post(f"{base}{URL}", params=params, content=body).text == "success"
        assert httpx.post(f"{base}/wecom/callback/other", params=params, content=body).status_code == 404
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    for secret in SECRETS:
        assert secret not in errors
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}")
    assert len(stored(engine)) == 1
    engine.dispose()


def test_cli_fails_fast_on_a_misconfigured_connection(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env |= wecom_conn_env(tmp_path, encoding_aes_key=AES_KEY[:42]) | {"PYTHONPATH": "plugins"}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    result = subprocess.run(
        [sys.executable, "-m", "wecom.receiver", "--conn-id", CONN_ID, "--port", str(free_port())],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "encoding_aes_key" in result.stderr and AES_KEY[:42] not in result.stderr
