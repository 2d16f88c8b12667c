"""The callback receiver over HTTP: verification, events, duplicates, every bad input, request limits."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.wecom.api.test_crypto import (
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
from tests.wecom.callbacks.test_parse import EVENTS, MALFORMED, NASTY_VALUES, event_xml, with_field
from wecom.api.crypto import WeComCrypto, decode_aes_key
from wecom.callbacks.intake import Intake
from wecom.callbacks.parse import FIELD_FORMATS, dedup_key
from wecom.callbacks.receiver import AIRFLOW_URL_PREFIX, create_receiver_app
from wecom.callbacks.receiver_config import ReceiverConfig, ReceiverLimits
from wecom.errors import UnknownConnectionError
from wecom.store.engine import create_target_engine

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
    messages = [r.getMessage() for r in caplog.records if r.name == "wecom.callbacks.receiver"]
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


def test_url_verification_is_logged_in_plain_words_without_secrets(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wecom.callbacks.receiver")
    echostr, signature, timestamp, nonce = CRYPTO.encrypt("echo")
    query = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
    assert client.get(URL, params=query).text == "echo"
    (line,) = without_secrets(caplog)
    assert line == f"wecom callback URL verification for conn_id={CONN_ID!r}: ok"


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"msg_signature": "0" * 40}, 403, "bad signature"),
        ({"msg_signature": None}, 403, "not a signed request"),
        ({"nonce": None}, 403, "not a signed request"),
        ({"echostr": None}, 400, "echostr missing"),
        ({"timestamp": "1409659589"}, 403, "window"),
        ({"corp": "wwothercorp0000000"}, 403, "wrong corp"),
        ({"key": "B" * 43}, 400, "cannot decrypt"),
    ],
)
def test_url_verification_rejections(
    client: TestClient, caplog: pytest.LogCaptureFixture, change: dict, status: int, words: str
) -> None:
    sender = WeComCrypto(TOKEN, change.pop("key", AES_KEY), change.pop("corp", CORP_ID))
    echostr, signature, timestamp, nonce = sender.encrypt("echo")
    params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr} | change
    if "timestamp" in change:  # a validly signed but stale request
        params["msg_signature"] = CRYPTO.signature(change["timestamp"], nonce, echostr)
    response = client.get(URL, params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == status
    assert "echo" not in response.text
    (line,) = without_secrets(caplog)
    assert f"rejected with {status}: URL verification failed: " in line and words in line


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
    "signed superscript timestamp": (lambda: envelope(MEMBER_EVENT, timestamp="²"), 403, "not a number"),
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
    "decrypted event with a DTD": (
        lambda: envelope('<!DOCTYPE xml [<!ENTITY z "zhangsan">]><xml>&z;</xml>'),
        400,
        "DTD",
    ),
    "body over the limit": (
        lambda: envelope(event_xml("update_user", "<UserID>u</UserID><Name>" + "x" * 70_000 + "</Name>")),
        413,
        "exceeds",
    ),
    # A correctly signed and encrypted envelope around a malformed event: every field the parser checks.
    **{
        f"sealed event, {name}": (lambda xml=xml: envelope(xml), 400, reason)
        for name, (xml, reason) in MALFORMED.items()
    },
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_refused_and_nothing_stored(
    client: TestClient, engine: Engine, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    make, status, reason = BAD_INPUTS[name]
    body, params = make()
    caplog.set_level(logging.INFO, logger="wecom.callbacks.receiver")
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


# Mounting in Airflow and reading Airflow connections


def test_mounted_under_the_airflow_url_prefix(resolver: Resolver, engine: Engine) -> None:
    parent = FastAPI()
    parent.mount(AIRFLOW_URL_PREFIX, create_receiver_app(resolver, path_prefix=""))
    body, params = envelope(MEMBER_EVENT)
    with TestClient(parent) as client:
        assert client.post(URL, params=params, content=body).text == "success"
    assert len(stored(engine)) == 1


def test_fuzzed_fields_of_a_sealed_event_are_stored_or_refused_never_500(client: TestClient, engine: Engine) -> None:
    """Every checked field of a signed, encrypted event, set to each value a fuzzer would try."""
    accepted: set[str] = set()
    for name in sorted(FIELD_FORMATS):
        for value in NASTY_VALUES:
            message = with_field(MEMBER_EVENT, name, value)
            body, params = envelope(message)
            response = client.post(URL, params=params, content=body)
            assert response.status_code in (200, 400), (name, value, response.status_code)
            if response.status_code == 200:
                accepted.add(dedup_key(message))
    assert {row["dedup_key"] for row in stored(engine)} == accepted


def test_requests_past_the_cap_are_answered_503_at_once(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    entered, release = threading.Event(), threading.Event()
    config = ReceiverConfig(corp_id=CORP_ID, token=TOKEN, encoding_aes_key=AES_KEY, engine=engine)

    def slow(conn_id: str) -> ReceiverConfig:
        entered.set()
        release.wait(30)
        return config

    app = create_receiver_app(slow, cache_ttl_s=0, limits=ReceiverLimits(max_concurrent_requests=1))
    body, params = envelope(MEMBER_EVENT)
    with TestClient(app) as client, ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(client.post, URL, params=params, content=body)
        assert entered.wait(30)
        assert client.post(URL, params=params, content=body).status_code == 503
        release.set()
        assert first.result(30).text == "success"
    assert "more than 1 requests in progress" in without_secrets(caplog)[0]
    assert len(stored(engine)) == 1


def test_a_content_length_that_is_not_ascii_digits_is_400(client: TestClient, engine: Engine) -> None:
    body, params = envelope(MEMBER_EVENT)
    response = client.post(URL, params=params, content=body, headers={"Content-Length": "²".encode("latin-1")})
    assert response.status_code == 400
    assert stored(engine) == []


def test_the_table_is_checked_once_not_per_request(resolver: Resolver, engine: Engine) -> None:
    checked: list[Engine] = []
    app = create_receiver_app(resolver, intake=Intake(prepare=checked.append))
    with TestClient(app) as client:
        for i in range(10):
            body, params = envelope(event_xml("update_user", f"<UserID>u{i}</UserID>"))
            client.post(URL, params=params, content=body)
    assert checked == [engine]
