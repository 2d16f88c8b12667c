"""The callback receiver app served by uvicorn on a free local port, storing into a test's target database."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from sqlalchemy import URL

from wecom.callbacks.receiver import create_receiver_app
from wecom.callbacks.receiver_config import ReceiverConfig
from wecom.errors import UnknownConnectionError
from wecom.store.engine import create_target_engine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_receiver_app(resolve), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/wecom/callback/{conn_id}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
