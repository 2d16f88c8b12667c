"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb, start, yield a URL, remove.

PostgreSQL is installed on the machine but not running; tests start their own
cluster on a free loopback port (as the ``postgres`` user when run as root,
since the server refuses to run as root) and delete it afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: apt-get install postgresql")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _start(data: Path, sockets: Path, log: Path, attempts: int = 3) -> int:
    """Start the server on a free port; another process (an xdist worker) may take the port first, so retry."""
    for _ in range(attempts):
        port = _free_port()
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        started = subprocess.run(
            _as_server_user([_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"]),
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode == 0:
            return port
    why = log.read_text(errors="replace") if log.exists() else started.stderr
    raise RuntimeError(f"PostgreSQL did not start in {attempts} tries: {why[-2000:]}")


@contextlib.contextmanager
def throwaway_postgres(database: str = "wecom") -> Iterator[str]:
    """Yield ``postgresql+psycopg2://postgres@127.0.0.1:<port>/<database>`` for a fresh cluster."""
    root = Path(tempfile.mkdtemp(prefix="wecom-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    try:
        subprocess.run(
            _as_server_user([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]),
            check=True,
            capture_output=True,
        )
        port = _start(data, sockets, root / "log")
        subprocess.run(
            [_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(
            _as_server_user([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


def database_name_for(nodeid: str) -> str:
    """A PostgreSQL database name of one test's own (``nodeid``) in this process."""
    return f"t_{os.getpid()}_{abs(hash(nodeid)) % 10**8}"


@contextlib.contextmanager
def empty_database(dialect: str, tmp_path: Path, postgres_url: Callable[[], str], name: str) -> Iterator[Engine]:
    """An empty target database: an SQLite file in ``tmp_path``, or database ``name`` created on the
    throwaway server (``postgres_url()``, started on first use) and dropped afterwards."""
    if dialect == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'target.db'}")
        yield engine
        engine.dispose()
        return
    base_url = postgres_url()
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = create_engine(base_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
