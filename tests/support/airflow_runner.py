"""Run a DAG through Airflow's own test runner (``airflow dags test``) in a process of its own.

A process of its own gives every run a clean state with the connections of that test only (passed
as ``AIRFLOW_CONN_*`` variables), as a scheduler would. The process is forked from a warm Airflow
(``tests.support.warm_airflow``, one per test process, started on first use) that has already
imported Airflow and the package and built the execution API, so a run pays for its DAG only.
An environment that changes what Airflow reads at import (its home, database, folders, logging)
gets a plain subprocess instead.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parents[2]
# Read once when Airflow is imported: a run whose environment differs here cannot use the warm process.
IMPORT_TIME_PREFIXES = (
    "AIRFLOW_HOME",
    "AIRFLOW_CONFIG",
    "AIRFLOW__CORE__",
    "AIRFLOW__DATABASE__",
    "AIRFLOW__LOGGING__",
)
IMPORT_TIME_NAMES = ("PYTHONPATH",)
# A deadline for one DAG run, not a wait: on a loaded 2-core machine a run takes minutes.
RUN_DEADLINE_S = 900
# The HTTP timeout a DAG run's client gets for the test's simulator: its calls answer in milliseconds,
# but a loaded machine may stall one for seconds, and a test that means a timeout sets its own.
API_TIMEOUT_S = 30


# The environment as tests/conftest.py set it, before any test patched it: what the warm process starts with.
SESSION_ENV = dict(os.environ)


def _import_time(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_PREFIXES) or k in IMPORT_TIME_NAMES}


class WarmAirflow:
    """The warm process of this test process, and ``run`` to fork one ``airflow`` command from it."""

    def __init__(self) -> None:
        self.env = SESSION_ENV
        self.log = Path(tempfile.mkstemp(prefix="warm-airflow-", suffix=".log")[1])
        self._pending = b""
        self._child: int | None = None  # the command running now
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.warm_airflow"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                bufsize=0,
            )
        atexit.register(self.close)
        self._reply(RUN_DEADLINE_S)  # {"ready": pid} once warm

    def serves(self, env: dict[str, str]) -> bool:
        return self.process.poll() is None and _import_time(env) == _import_time(self.env)

    def _reply(self, timeout_s: float) -> dict[str, int]:
        """The next reply line; read unbuffered, since two replies may arrive in one read."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._pending:
            ready, _, _ = select.select([self.process.stdout], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(self.process.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                why = "exited" if ready else f"did not answer in {timeout_s:.0f} s"
                raise RuntimeError(f"the warm Airflow {why}: {self.log.read_text(errors='replace')[-2000:]}")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line)

    def run(self, argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        """``airflow ARGV`` in a child forked from the warm process; killed after ``timeout``.

        Any failure of the exchange itself (an interrupted test, a dead warm process) closes this warm
        process, so the next run starts a new one instead of reading a reply meant for this one.
        """
        assert self.process.stdin is not None
        try:
            with tempfile.TemporaryDirectory(prefix="warm-airflow-run-") as tmp:
                out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
                request = {"argv": argv, "env": env, "cwd": os.getcwd(), "stdout": str(out), "stderr": str(err)}
                self.process.stdin.write(json.dumps(request).encode() + b"\n")
                self._child = self._reply(RUN_DEADLINE_S)["pid"]
                try:
                    code = self._reply(timeout)["returncode"]
                except RuntimeError:
                    raise subprocess.TimeoutExpired(["airflow", *argv], timeout) from None
                self._child = None
                return subprocess.CompletedProcess(["airflow", *argv], code, out.read_text(), err.read_text())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._child, signal.SIGKILL)
            self._child = None
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.log.unlink(missing_ok=True)


_warm: WarmAirflow | None = None


def run_airflow(
    argv: list[str], env: dict[str, str], timeout: float = RUN_DEADLINE_S
) -> subprocess.CompletedProcess[str]:
    """``airflow ARGV`` with ``env`` added to this process's environment; the finished process (not checked)."""
    global _warm  # noqa: PLW0603 (one warm process per test process, started on first use)
    full = os.environ | env
    if _warm is None or _warm.process.poll() is not None:
        _warm = WarmAirflow()
    if _warm.serves(full):
        return _warm.run(argv, full, timeout)
    cmd = [sys.executable, "-m", "airflow", *argv]
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=timeout, check=False)


def wecom_connection(base_url: str, corp_id: str, secret: str, **extra: Any) -> str:
    """A ``wecom`` connection (JSON) to a test's simulator; ``timeout`` defaults to a generous API_TIMEOUT_S."""
    extra = {"timeout": API_TIMEOUT_S} | extra
    return json.dumps({"conn_type": "wecom", "host": base_url, "login": corp_id, "password": secret, "extra": extra})


def target_connection(sqlalchemy_url: str) -> str:
    """An Airflow connection (JSON) for a SQLAlchemy URL of sqlite or postgresql."""
    url = make_url(sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": url.database})
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port,
            "login": url.username,
            "password": url.password or "",
            "schema": url.database,
        }
    )


def run_dag(
    dag_id: str,
    env: dict[str, str],
    conf: dict[str, Any] | None = None,
    logical_date: str | None = None,
    timeout: float = RUN_DEADLINE_S,
) -> subprocess.CompletedProcess[str]:
    """``airflow dags test DAG_ID [LOGICAL_DATE]`` with ``env`` added; returns the finished process (not checked)."""
    argv = ["dags", "test", dag_id]
    if logical_date is not None:
        argv.append(logical_date)
    if conf is not None:
        argv += ["--conf", json.dumps(conf)]
    return run_airflow(argv, env, timeout)


def task_tries(dag_id: str, task_id: str) -> tuple[int, str]:
    """``(try_number, state)`` of ``task_id`` in the newest run of ``dag_id``, from the metadata database
    that ``run_dag`` shares with this test process (``$AIRFLOW_HOME/airflow.db``)."""
    with closing(sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db")) as db:
        row = db.execute(
            "SELECT ti.try_number, ti.state FROM task_instance ti JOIN dag_run dr"
            " ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id"
            " WHERE ti.dag_id = ? AND ti.task_id = ? ORDER BY dr.id DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
    assert row is not None, f"{dag_id}.{task_id} never ran"
    return row
