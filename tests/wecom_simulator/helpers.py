"""Shared helpers for the simulator tests: a token-carrying API client and a stub callback receiver."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import requests
from requests.adapters import HTTPAdapter

from tests.support.waiting import DEADLINE_S, wait_for
from tests.wecom.api.test_crypto import verify_and_decrypt
from wecom.api.crypto import WeComCrypto

CORP_ID = "wwtestcorp"
SECRET = "s3cret-value"
CALLBACK_TOKEN = "cbToken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


class SourceAddressAdapter(HTTPAdapter):
    """Connects from a chosen local address, so the simulator sees another caller IP (127.0.0.2, ...)."""

    def __init__(self, source_ip: str) -> None:
        self.source_ip = source_ip
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.source_ip, 0), **kwargs)


class Api:
    """Calls one simulator's ``/cgi-bin/`` endpoints with a token fetched on first use.

    ``source_ip`` (any 127.x.y.z on Linux) makes the calls come from that caller IP.
    """

    def __init__(
        self, base_url: str, corp_id: str = CORP_ID, secret: str = SECRET, *, source_ip: str | None = None
    ) -> None:
        self.base = base_url + "/cgi-bin/"
        self.corp_id, self.secret = corp_id, secret
        self.session = requests.Session()
        if source_ip is not None:
            self.session.mount("http://", SourceAddressAdapter(source_ip))
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            answer = self.gettoken()
            assert answer["errcode"] == 0, answer
            self._token = answer["access_token"]
        return self._token

    def gettoken(self, **params: str) -> dict[str, Any]:
        query = {"corpid": self.corp_id, "corpsecret": self.secret, **params}
        return self.session.get(self.base + "gettoken", params=query, timeout=10).json()

    def raw(self, endpoint: str, *, method: str = "GET", body: Any = None, **params: Any) -> requests.Response:
        params.setdefault("access_token", self.token())
        return self.session.request(method, self.base + endpoint, params=params, json=body, timeout=10)

    def get(self, endpoint: str, **params: Any) -> dict[str, Any]:
        return self.raw(endpoint, **params).json()

    def post(self, endpoint: str, body: Any, **params: Any) -> dict[str, Any]:
        return self.raw(endpoint, method="POST", body=body, **params).json()


class Receiver:
    """A minimal callback receiver: verifies and decrypts like a real one, and can misbehave on purpose.

    ``fail_next`` answers that many POSTs with HTTP 500; ``hold_next`` keeps that many POSTs (and,
    with ``hold_url_check``, the URL check's GET) unanswered until ``release()``; ``holding`` is set
    once one is held, so a test acts at that exact moment instead of after a guessed sleep.
    """

    def __init__(self, token: str = CALLBACK_TOKEN, key: str = AES_KEY, corp_id: str = CORP_ID) -> None:
        self.crypto = WeComCrypto(token, key, corp_id)
        self.events: list[str] = []
        self.posts = 0
        self.fail_next = 0
        self.hold_next = 0
        self.hold_url_check = False
        self.holding = threading.Event()
        self._released = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if receiver.hold_url_check:
                    receiver.hold()
                query = dict(parse_qsl(urlsplit(self.path).query))
                echo = verify_and_decrypt(
                    receiver.crypto, query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
                )
                self._answer(200, echo)

            def do_POST(self) -> None:
                query = dict(parse_qsl(urlsplit(self.path).query))
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.posts += 1
                    fail, hold = receiver.fail_next > 0, receiver.hold_next > 0
                    receiver.fail_next -= fail
                    receiver.hold_next -= hold
                if hold:
                    receiver.hold()
                if fail:
                    self._answer(500, "busy")
                    return
                envelope = ElementTree.fromstring(body)
                assert envelope.findtext("ToUserName") == receiver.crypto.receive_id
                xml = verify_and_decrypt(
                    receiver.crypto,
                    query["msg_signature"],
                    query["timestamp"],
                    query["nonce"],
                    envelope.findtext("Encrypt") or "",
                )
                with receiver.lock:
                    receiver.events.append(xml)
                self._answer(200, "success")

            def _answer(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def hold(self) -> None:
        self.holding.set()
        self._released.wait(DEADLINE_S)

    def release(self) -> None:
        """Let every held request (and any later one) through."""
        self._released.set()

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def parsed(self) -> list[dict[str, str]]:
        """Each received event as {tag: text}; ExtAttr keeps its raw XML."""
        with self.lock:
            events = list(self.events)
        return [
            {child.tag: child.text or ElementTree.tostring(child, "unicode") for child in ElementTree.fromstring(e)}
            for e in events
        ]


def finished_job(api: Api, jobid: str) -> dict[str, Any]:
    """export/get_result once the job's files are written (status 2)."""

    def finished() -> dict[str, Any] | None:
        result = api.get("export/get_result", jobid=jobid)
        return result if result["status"] == 2 else None

    return wait_for(finished, DEADLINE_S, f"export job {jobid} to finish")
