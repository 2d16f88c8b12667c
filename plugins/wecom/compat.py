"""Workarounds for behaviour of the pinned Airflow (3.3.2) that its public interface cannot reach.

Each shim names the upstream issue that makes it necessary and the Airflow release that no longer
needs it; tests/wecom/test_compat.py checks the pinned Airflow still behaves as the shim assumes, and
fails, saying which shim to delete, once it does not. Nothing else in the package works around Airflow.

* ``ConnectionTestPortFix`` — apache/airflow#73298 (merged after 3.3.2): the UI's Test button posts
  ``port: 0`` for a connection without a port, which the API takes for another destination and answers
  400 before the hook runs. Airflow's plugin interface installs it (``fastapi_root_middlewares``).
  No public route reaches the bug: the button (the connection list's only Test) builds its body from
  the stored connection, ``port: Number(connection.port)``, not from the form, so no field behaviour
  (``hidden_fields``, placeholders) changes it, and the API refuses before any hook code runs. Dropping
  the shim would leave the Test button answering 400 for every ``wecom`` connection until the fix ships.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONNECTION_TEST_PATH = "/api/v2/connections/test"
CONNECTION_TYPE = "wecom"


def without_port_zero(body: bytes) -> bytes:
    """A connection-test request body without ``"port": 0`` when it tests a wecom connection.

    Airflow 3.3.2's UI posts ``port: Number(null)``, i.e. 0, for a connection without a port; the API
    takes 0 for another destination than the stored NULL and, as the UI sends the masked password,
    answers 400 before the hook runs (apache/airflow#73298). A wecom connection has no port (the form
    hides it), so 0 is dropped; anything else passes unchanged.
    """
    try:
        test = json.loads(body)
    except ValueError:
        return body
    if not isinstance(test, dict) or test.get("conn_type") != CONNECTION_TYPE or test.get("port") != 0:
        return body
    del test["port"]
    return json.dumps(test).encode()


class ConnectionTestPortFix:
    """ASGI middleware applying ``without_port_zero`` to ``POST /api/v2/connections/test``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(CONNECTION_TEST_PATH):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = without_port_zero(b"".join(chunks))
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # what follows the body: the client's disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
