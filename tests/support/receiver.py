"""The callback receiver app served by uvicorn on a free local port, storing into a test's target database."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvicorn
from sqlalchemy import URL, text
from starlette.types import ASGIApp

from tests.support.waiting import DEADLINE_S, wait_for
from wecom.api.crypto import WeComCrypto
from wecom.callbacks.parse import MAX_FIELD_CHARS
from wecom.callbacks.receiver import create_receiver_app
from wecom.callbacks.receiver_config import ReceiverConfig
from wecom.errors import UnknownConnectionError
from wecom.store.engine import create_target_engine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app: ASGIApp, **options: Any) -> Iterator[int]:
    """``app`` served by uvicorn (its default HTTP protocol, ``options`` as ``uvicorn.Config`` takes them) in
    a thread, on a free local port; yields the port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), DEADLINE_S, "the server to start")
    assert server.started, "the server thread ended before it started serving"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def serving_receiver(
    target_url: URL, *, corp_id: str, token: str, aes_key: str, conn_id: str = "wecom_default"
) -> Iterator[str]:
    """Yields the callback URL of ``conn_id`` (the one the admin console would be given)."""
    engine = create_target_engine(target_url, timeout_s=3)

    def resolve(requested: str) -> ReceiverConfig:
        if requested != conn_id:
            raise UnknownConnectionError(requested)
        return ReceiverConfig(corp_id=corp_id, token=token, encoding_aes_key=aes_key, engine=engine)

    try:
        with serving(create_receiver_app(resolve)) as port:
            yield f"http://127.0.0.1:{port}/wecom/callback/{conn_id}"
    finally:
        engine.dispose()


# -- bodies of every size, as clients write them ---------------------------------------------------------

KB = 1024
PIECE = KB
# What each body holds: judged by its signature and content once its size is within the limit.
SEALED, BAD_SIGNATURE, FIELD_TOO_LONG = "a sealed event", "a bad signature", "a field over 4096 characters"
# (size, content, answer) with the default limit, the connection's callback_max_body_bytes of 64 KiB.
BODY_CASES = [
    (1 * KB, SEALED, 200),
    (1 * KB, BAD_SIGNATURE, 403),
    (17 * KB, SEALED, 200),
    (17 * KB, BAD_SIGNATURE, 403),
    (63 * KB, SEALED, 200),
    (63 * KB, FIELD_TOO_LONG, 400),
    (65 * KB, SEALED, 413),
    (3 * KB * KB, SEALED, 413),
]
# How the client writes a body: with Content-Length, headers and body in one write or the body in 1 KB
# writes; or chunked transfer encoding, 1 KB a chunk.
WRITES = ("in one piece", "in 1 KB pieces", "chunked")


def sized_event(size: int, content: str, crypto: WeComCrypto, userid: str) -> tuple[bytes, dict[str, str]]:
    """A POST body of exactly ``size`` bytes and its signed query: an ``update_user`` event whose ExtAttr
    text values fill it, wrapped as WeCom wraps it (``content`` says what is wrong with it, if anything)."""
    value_chars = MAX_FIELD_CHARS + 1 if content == FIELD_TOO_LONG else MAX_FIELD_CHARS
    filler = size * 3 // 4
    while True:
        items, rest = divmod(filler, value_chars)
        values = [value_chars] * items + ([rest] if rest else [])
        ext_attr = "".join(
            f"<Item><Name>f{i}</Name><Type>0</Type><Text><Value>{'x' * n}</Value></Text></Item>"
            for i, n in enumerate(values)
        )
        event = (
            f"<xml><ToUserName><![CDATA[{crypto.receive_id}]]></ToUserName><CreateTime>1767225600</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>"
            f"<ChangeType>update_user</ChangeType><UserID>{userid}</UserID><ExtAttr>{ext_attr}</ExtAttr></xml>"
        )
        encrypted, signature, timestamp, nonce = crypto.encrypt(event)
        body = f"<xml><ToUserName><![CDATA[{crypto.receive_id}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]>"
        if len(body) + len("</Encrypt></xml>") <= size:
            break
        filler -= len(body) + len("</Encrypt></xml>") - size
    body += "</Encrypt>" + " " * (size - len(body) - len("</Encrypt></xml>")) + "</xml>"
    if content == BAD_SIGNATURE:
        signature = "0" * len(signature)
    return body.encode(), {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}


def post(port: int, path: str, body: bytes, params: dict[str, str], write: str) -> tuple[int, str]:
    """POST ``body`` as ``write`` says, writing all of it before reading the answer; ``(status, text)``.

    "in one piece" is one ``sendall`` of the request line, headers and body (what a client does that
    writes headers and body together); the others write the head, then 1 KB at a time. A server that
    closes the connection before the body is written fails the write.
    """
    head = f"POST {path}?{urlencode(params)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/xml\r\n"
    pieces = [body[start : start + PIECE] for start in range(0, len(body), PIECE)]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if write == "chunked":
            sock.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
            for piece in pieces:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        else:
            head_bytes = f"{head}Content-Length: {len(body)}\r\n\r\n".encode()
            if write == "in one piece":
                sock.sendall(head_bytes + body)
            else:
                sock.sendall(head_bytes)
                for piece in pieces:
                    sock.sendall(piece)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read().decode()


def check_body_case(port: int, target_db: Path, crypto: WeComCrypto, case: tuple[int, str, int], write: str) -> None:
    """POST one of ``BODY_CASES`` to the receiver on ``port``: the answer its case names, and its event
    stored in ``target_db`` exactly when the answer is 200."""
    size, content, status = case
    userid = f"size{size}_{write.replace(' ', '_')}_{content.split()[-1]}"
    body, params = sized_event(size, content, crypto, userid)
    assert len(body) == size
    expected = "success" if status == 200 else HTTPStatus(status).phrase
    assert post(port, "/wecom/callback/wecom_default", body, params, write) == (status, expected)
    engine = create_target_engine(f"sqlite:///{target_db}")
    with engine.connect() as connection:
        query = text("SELECT count(*) FROM wecom_callback_events WHERE entity_id = :userid")
        assert connection.execute(query, {"userid": userid}).scalar_one() == (status == 200)
    engine.dispose()
