"""The standalone receiver (a real uvicorn over loopback): serving, slow and oversized clients, shutdown.

Bounds are asserted by what the server does (closes, answers 408/400, finishes
in-flight work), with generous waits that hold on a loaded machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.support.receiver import BAD_SIGNATURE, BODY_CASES, KB, WRITES, check_body_case, sized_event
from tests.support.waiting import wait_for
from tests.wecom.api.test_crypto import CORP_ID
from tests.wecom.callbacks.test_events_table import as_role, run_file
from tests.wecom.callbacks.test_parse import event_xml
from tests.wecom.callbacks.test_receiver import CRYPTO, MEMBER_EVENT, SECRETS, URL, envelope, stored
from tests.wecom.callbacks.test_receiver_config import wecom_conn_env
from wecom.callbacks.events_table import ensure_callback_events_table
from wecom.receiver import main
from wecom.store.engine import create_target_engine

# starts python -m wecom.receiver (it loads Airflow)
pytestmark = pytest.mark.process

ROOT = Path(__file__).parents[3]
COMMAND = [sys.executable, "-m", "wecom.receiver", "--conn-id", "wecom_default"]
WAIT_S = 30  # generous: the machine may be loaded; the bounds under test are 1-2 s


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def receiver_env(tmp_path: Path, **connections: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    return (
        env
        | wecom_conn_env(tmp_path)
        | connections
        | {
            "PYTHONPATH": "plugins",
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
        }
    )


def start(tmp_path: Path, *options: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    server = subprocess.Popen(
        [*COMMAND, "--port", str(port), *options],
        env=receiver_env(tmp_path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def accepting() -> bool:
        assert server.poll() is None, f"the receiver exited: {server.communicate()[0][-2000:]}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
        except OSError:
            return False
        return True

    wait_for(accepting, 90, "the receiver to start", interval_s=0.2)
    return server, port


def stop(server: subprocess.Popen[str]) -> str:
    """SIGTERM (unless sent already), wait for the exit; the server's output, checked for secrets."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    output, _ = server.communicate(timeout=WAIT_S)
    # uvicorn re-raises the signal it shut down on, so a clean stop may end as -SIGTERM.
    assert server.returncode in (0, -signal.SIGTERM), output
    for secret in SECRETS:
        assert secret not in output
    return output


def sealed_request(port: int, message: str) -> tuple[bytes, bytes]:
    """(head, body) of a signed POST for ``message``."""
    body, params = envelope(message)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    head = (
        f"POST {URL}?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(body.encode())}\r\n\r\n"
    ).encode()
    return head, body.encode()


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or WAIT_S passes)."""
    sock.settimeout(WAIT_S)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
        if b"\r\n\r\n" in received and received.split(b"\r\n\r\n", 1)[1]:
            break
    return received


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    tmp_path = tmp_path_factory.mktemp("standalone")
    process, port = start(tmp_path, "--header-timeout", "1", "--body-timeout", "1", "--max-header-bytes", "4096")
    yield port, tmp_path
    output = stop(process)
    assert f"paste http://127.0.0.1:{port}/wecom/callback/wecom_default into the admin console" in output


def test_serves_verification_and_events_over_http(server: tuple[int, Path]) -> None:
    port, tmp_path = server
    base = f"http://127.0.0.1:{port}"
    echostr, signature, timestamp, nonce = CRYPTO.encrypt("hello-cli")
    query = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
    response = httpx.get(f"{base}{URL}", params=query)
    assert (response.status_code, response.text) == (200, "hello-cli")
    body, params = envelope(MEMBER_EVENT)
    assert httpx.post(f"{base}{URL}", params=params, content=body).text == "success"
    assert httpx.post(f"{base}/wecom/callback/other", params=params, content=body).status_code == 404
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}")
    assert len(stored(engine)) == 1
    engine.dispose()


def test_half_sent_requests_are_closed_and_others_still_served(server: tuple[int, Path]) -> None:
    port, _ = server
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    for sock in slow:
        sock.sendall(b"POST /wecom/callback/wecom_default?msg_signa")
    head, body = sealed_request(port, event_xml("update_user", "<UserID>during_slowloris</UserID>"))
    with socket.create_connection(("127.0.0.1", port)) as good:
        good.sendall(head + body)
        assert answer(good).startswith(b"HTTP/1.1 200")
    for sock in slow:
        assert answer(sock) == b""  # closed by the server: no request line ever completed
        sock.close()


def test_a_body_that_stalls_is_answered_408(server: tuple[int, Path]) -> None:
    port, _ = server
    head, body = sealed_request(port, event_xml("update_user", "<UserID>slow_body</UserID>"))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + body[:20])
        assert answer(sock).startswith(b"HTTP/1.1 408")


def test_oversized_headers_are_refused(server: tuple[int, Path]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /wecom/callback/wecom_default HTTP/1.1\r\nX-Padding: " + b"x" * 8192)
        assert answer(sock).startswith(b"HTTP/1.1 400")


def test_only_the_request_line_and_headers_count_against_the_header_limit(server: tuple[int, Path]) -> None:
    """Heads of exactly the limit (4096 bytes here) pass, whatever follows them in the same packet."""
    port, _ = server
    body, params = sized_event(60 * KB, BAD_SIGNATURE, CRYPTO, "head_limit")
    for head_bytes, sent_body, status in ((4096, body, b"403"), (4097, b"", b"400")):
        head = f"POST {URL}?{urlencode(params)} HTTP/1.1\r\nContent-Length: {len(sent_body)}\r\nX-Padding: "
        head += "p" * (head_bytes - len(head) - len("\r\n\r\n")) + "\r\n\r\n"
        assert len(head) == head_bytes
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head.encode() + sent_body)
            assert answer(sock).startswith(b"HTTP/1.1 " + status)


@pytest.fixture(scope="module")
def default_limits_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """The receiver with its default header and body limits, and a body timeout no loaded machine reaches."""
    tmp_path = tmp_path_factory.mktemp("default_limits")
    process, port = start(tmp_path, "--body-timeout", "120")
    yield port, tmp_path
    stop(process)


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize(("size", "content", "status"), BODY_CASES)
def test_a_body_is_judged_by_the_body_limit_its_signature_and_content(
    default_limits_server: tuple[int, Path], size: int, content: str, status: int, write: str
) -> None:
    """Only the request line and headers count against the header limit (16 KiB): a body up to the
    connection's callback_max_body_bytes (64 KiB) is answered for what it holds, a larger one 413,
    also when the client writes all of it before it reads the answer."""
    port, tmp_path = default_limits_server
    check_body_case(port, tmp_path / "target.db", CRYPTO, (size, content, status), write)


def test_the_rest_of_a_refused_body_is_dropped_for_the_body_timeout_then_the_connection_closes(
    server: tuple[int, Path],
) -> None:
    """A 413 goes out as soon as Content-Length says too much; the rest of the body is read and dropped
    for at most the body timeout (1 s here), so a client that trickles it cannot hold the connection
    (each byte it sends would otherwise restart uvicorn's keep-alive clock)."""
    port, _ = server
    head, body = sealed_request(port, event_xml("update_user", "<UserID>announced_3mb</UserID>"))
    head = head.replace(f"Content-Length: {len(body)}".encode(), f"Content-Length: {3 * KB * KB}".encode())
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + body)
        assert answer(sock).startswith(b"HTTP/1.1 413")
        sock.settimeout(0.2)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"x")
                if sock.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:  # reset: closed by the server
                break
        else:
            pytest.fail(f"the connection was still open after {WAIT_S} s of trickled body")


def unread_bytes(port: int, client: socket.socket) -> int | None:
    """What the server has not yet read of ``client``'s connection (the socket's receive queue, /proc/net/tcp).

    None while the connection is not listed yet. Zero means the server read everything sent so far.
    """
    local, remote = (f"0100007F:{p:04X}" for p in (port, client.getsockname()[1]))
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == (local, remote):
            return int(fields[4].split(":")[1], 16)
    return None


def refuses_connections(port: int) -> bool:
    """The listening socket is closed: the server has begun shutting down."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
    except ConnectionRefusedError:
        return True
    return False


def test_shutdown_finishes_the_request_in_flight(tmp_path: Path) -> None:
    process, port = start(tmp_path, "--body-timeout", "20")
    head, body = sealed_request(port, event_xml("update_user", "<UserID>in_flight</UserID>"))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + body[:20])
        wait_for(lambda: unread_bytes(port, sock) == 0, WAIT_S, "the server reading the request's headers")
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: refuses_connections(port), WAIT_S, "the server to stop accepting connections")
        sock.sendall(body[20:])
        assert answer(sock).startswith(b"HTTP/1.1 200")
    stop(process)
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}")
    assert [row["entity_id"] for row in stored(engine)] == ["in_flight"]
    engine.dispose()


def test_help_documents_every_setting_and_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text_ = " ".join(capsys.readouterr().out.split())
    for setting in [
        "--header-timeout HEADER_TIMEOUT seconds to receive a request's headers (default: 5.0)",
        "--max-header-bytes MAX_HEADER_BYTES largest request line + headers (default: 16384)",
        "--body-timeout BODY_TIMEOUT seconds to receive a request's body (default: 5.0)",
        "requests in progress, then 503 (default: 256)",
        "open connections, then uvicorn's 503 (default: 1024)",
        "--write-deadline WRITE_DEADLINE seconds from arrival to answer, then 503 (default: 3.0)",
        "--shutdown-timeout SHUTDOWN_TIMEOUT seconds to finish in-flight work (default: 10)",
    ]:
        assert setting in text_


def test_fails_fast_on_a_misconfigured_connection(tmp_path: Path) -> None:
    env = receiver_env(tmp_path) | wecom_conn_env(tmp_path, callback_max_body_bytes=10)
    result = subprocess.run(
        [*COMMAND, "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "callback_max_body_bytes" in result.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("target_engine", ["postgresql"], indirect=True)
def test_fails_at_startup_naming_the_grant_a_role_lacks(tmp_path: Path, target_engine: Engine) -> None:
    receiver = as_role(target_engine, "wecom_receiver")
    ensure_callback_events_table(target_engine)
    run_file(target_engine, "grants/receiver.sql")
    with target_engine.begin() as connection:
        connection.execute(text("REVOKE UPDATE (delivery_count) ON wecom_callback_events FROM wecom_receiver"))
    url = receiver.url
    target = {"conn_type": "postgres", "host": url.host, "port": url.port, "login": "wecom_receiver"}
    env = receiver_env(tmp_path, AIRFLOW_CONN_WECOM_TARGET_DB=json.dumps(target | {"schema": url.database}))
    result = subprocess.run(
        [*COMMAND, "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if "wecom receiver" in line]
    assert line == (
        "wecom receiver: wecom_default: role wecom_receiver lacks GRANT UPDATE (delivery_count) ON "
        "wecom_callback_events (see include/sql/grants/receiver.sql)"
    )
    assert CORP_ID not in result.stderr
    receiver.dispose()


def test_reads_the_metadata_database_when_it_is_the_secrets_backend(tmp_path: Path, airflow_metadata: Path) -> None:
    """Outside the API server Airflow reads connections from the environment and the secrets backend only;
    a connection kept in the metadata database (made in the UI) is served once that database is configured
    as the receiver's secrets backend, and without it the receiver refuses to start, saying so."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    stored = {k: json.loads(v) for k, v in wecom_conn_env(tmp_path).items()}
    with create_session() as session:
        for variable, fields in stored.items():
            conn_id = variable.removeprefix("AIRFLOW_CONN_").lower()
            session.add(Connection(conn_id=conn_id, **{**fields, "extra": json.dumps(fields.get("extra", {}))}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")} | {"PYTHONPATH": "plugins"}
    port = free_port()
    refused = subprocess.run(
        [*COMMAND, "--port", str(port)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert refused.returncode == 2
    assert "no connection 'wecom_default' in the AIRFLOW_CONN_* variables or the secrets backend" in refused.stderr
    assert "AIRFLOW__SECRETS__BACKEND=airflow.secrets.metastore.MetastoreBackend" in refused.stderr
    metastore = env | {"AIRFLOW__SECRETS__BACKEND": "airflow.secrets.metastore.MetastoreBackend"}
    server = subprocess.Popen(
        [*COMMAND, "--port", str(port)],
        env=metastore,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: _accepts(server, port), 90, "the receiver to start", interval_s=0.2)
        echostr, signature, timestamp, nonce = CRYPTO.encrypt("from-the-metadata-db")
        query = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
        verified = httpx.get(f"http://127.0.0.1:{port}{URL}", params=query, timeout=WAIT_S)
        assert (verified.status_code, verified.text) == (200, "from-the-metadata-db")
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)


def _accepts(server: subprocess.Popen[str], port: int) -> bool:
    assert server.poll() is None, f"the receiver exited: {server.communicate()[0][-2000:]}"
    try:
        socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
    except OSError:
        return False
    return True
