"""`make airflow`: a real Airflow 3.3 on this machine, with the WeCom simulator as the company.

Starts the simulator, then the api-server, scheduler, dag-processor and triggerer (and, with
``--executor celery``, a Redis broker and two Celery workers) on a metadata database in ./var
(SQLite, single-user: see docs/running-in-airflow.md; or a throwaway PostgreSQL 15 cluster with
``--postgres``, what the deployment tests run). The connections
``wecom_default`` (pointing at the simulator, with the callback token and key) and
``wecom_target_db`` (a SQLite file) are stored in the metadata database, where the UI shows
them. Everything is written to ``airflow.cfg`` in the Airflow home, so ``AIRFLOW_HOME=var/airflow
.venv/bin/airflow ...`` in another shell talks to the same instance.

Each component runs in its own process group; Ctrl-C (or SIGTERM) stops them all, newest first,
and leaves no process behind. tests/deployment/ starts the same stack through ``AirflowLocal``.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: tests.support is the project's own

from tests.support.throwaway_postgres import throwaway_postgres  # noqa: E402

ADMIN = "admin"
CORP_ID = "wwlocal0000000001"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTHY = ("metadatabase", "scheduler", "triggerer", "dag_processor")
# Deadlines, not waits: polls end as soon as a component is up; a loaded 2-core machine may need minutes.
STARTUP_DEADLINE_S = 120


def flags(**values: object) -> list[str]:
    """``--name=value`` per option (``_`` in a name becomes ``-``).

    Always one word with ``=``: a generated secret may start with ``-`` (``token_urlsafe`` gives one in
    64 such), which argparse would read as the next option if it came as a word of its own.
    """
    return [f"--{name.replace('_', '-')}={value}" for name, value in values.items()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Options:
    """What differs between `make airflow` and the deployment tests."""

    home: Path = ROOT / "var" / "airflow"
    executor: str = "local"  # or "celery"
    postgres: bool = False
    port: int = 8080
    members: int = 500
    departments: int = 40
    celery_workers: int = 2
    celery_concurrency: int = 4
    # dag-processor re-list interval: a test adds no files, a user editing DAGs wants them soon
    refresh_interval_s: int = 30
    # a folder of your own DAGs, parsed beside the package's (a second DAG bundle): e.g. one
    # scheduled on the directory's assets (docs/data-platform.md)
    extra_dags: Path | None = None


@dataclass
class Secrets:
    """Kept in the home, so a restart keeps the login, the encrypted connections and the callback key."""

    admin_password: str
    fernet_key: str
    jwt_secret: str
    corp_secret: str
    callback_token: str
    encoding_aes_key: str

    @classmethod
    def load_or_create(cls, path: Path) -> Secrets:
        if path.is_file():
            return cls(**json.loads(path.read_text()))
        from cryptography.fernet import Fernet  # noqa: PLC0415 (Airflow's own dependency)

        alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        made = cls(
            admin_password=secrets.token_urlsafe(12),
            fernet_key=Fernet.generate_key().decode(),
            jwt_secret=secrets.token_urlsafe(48),
            corp_secret=secrets.token_urlsafe(24),
            callback_token="".join(secrets.choice(alnum) for _ in range(32)),
            encoding_aes_key="".join(secrets.choice(alnum) for _ in range(43)),
        )
        path.write_text(json.dumps(made.__dict__))
        path.chmod(0o600)
        return made


@dataclass
class AirflowLocal:
    """The running stack; ``start()`` returns once the API server reports every component healthy."""

    options: Options
    base_url: str = ""
    simulator_url: str = ""
    metadata_url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def home(self) -> Path:
        return self.options.home

    @property
    def logs(self) -> Path:
        return self.home / "logs" / "components"

    @property
    def staging(self) -> Path:
        return self.home / "staging"

    @property
    def target_db(self) -> Path:
        return self.home / "wecom.db"

    @cached_property
    def secrets(self) -> Secrets:
        return Secrets.load_or_create(self.home / "launcher-secrets.json")

    @property
    def env(self) -> dict[str, str]:
        """What every component and `airflow` CLI call gets: the home (airflow.cfg there holds the rest).

        The caller's own AIRFLOW* variables (a test session's, a shell's) are left out: airflow.cfg is the
        whole configuration, so what the launcher prints is what runs.
        """
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        return inherited | {
            "AIRFLOW_HOME": str(self.home),
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> AirflowLocal:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self.logs.mkdir(parents=True, exist_ok=True)
            self.staging.mkdir(exist_ok=True)
            self.metadata_url = self._metadata_database()
            self.base_url = f"http://127.0.0.1:{self.options.port}"
            broker = self._redis() if self.options.executor == "celery" else None
            self._write_config(broker)
            self._write_passwords()
            self.airflow("db", "migrate")
            self.simulator_url = self.start_simulator()
            self._register_connections()
            for name in COMPONENTS:
                self._spawn(name, [sys.executable, "-m", "airflow", name])
            for n in range(1, self.options.celery_workers + 1 if broker else 1):
                worker_env = {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
                command = ["celery", "worker", "-H", f"worker{n}@%h", "-c", str(self.options.celery_concurrency)]
                self._spawn(f"celery-worker{n}", [sys.executable, "-m", "airflow", *command], worker_env)
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM to every component's process group at once; SIGKILL what is left after 20 s."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                print(f"{name} ignored SIGTERM for 20 s: killed", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group's leftovers (task processes, uvicorn workers)
            process.wait()
        self.processes.clear()
        self._stack.close()

    def __enter__(self) -> AirflowLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _metadata_database(self) -> str:
        if not self.options.postgres:
            return f"sqlite:///{self.home / 'airflow.db'}"
        return self._stack.enter_context(throwaway_postgres("airflow"))

    def _redis(self) -> str:
        redis = shutil.which("redis-server")
        if redis is None:
            raise SystemExit("the Celery executor needs redis-server: apt-get install redis-server")
        port = free_port()
        self._spawn("redis", [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        return f"redis://127.0.0.1:{port}/0"

    def _write_config(self, broker: str | None) -> None:
        """airflow.cfg in the home: the repo's DAGs and plugins, no examples, one API worker, the login, [wecom]."""
        s = self.secrets
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read_dict(
            {
                "core": {
                    "dags_folder": str(ROOT / "dags"),
                    "plugins_folder": str(ROOT / "plugins"),
                    "load_examples": "False",
                    "executor": "CeleryExecutor" if broker else "LocalExecutor",
                    "parallelism": "8",
                    "fernet_key": s.fernet_key,
                    "simple_auth_manager_users": f"{ADMIN}:admin",
                    "test_connection": "Enabled",
                    "execution_api_server_url": f"{self.base_url}/execution/",
                },
                "database": {"sql_alchemy_conn": self.metadata_url},
                "api": {"host": "127.0.0.1", "port": str(self.options.port), "workers": "1", "base_url": self.base_url},
                "api_auth": {"jwt_secret": s.jwt_secret},
                "logging": {
                    "worker_log_server_port": str(free_port()),
                    "trigger_log_server_port": str(free_port()),
                },
                "dag_processor": {
                    "refresh_interval": str(self.options.refresh_interval_s),
                    "parsing_processes": "1",
                    "dag_bundle_config_list": json.dumps(self._bundles()),
                },
                "celery": {
                    "broker_url": broker or "",
                    "result_backend": "db+" + self.metadata_url.replace("+psycopg2", ""),
                },
                # the WeCom package's deployment settings (docs/configuration.md)
                "wecom": {"staging_uri": f"file://{self.staging}"},
            }
        )
        path = self.home / "airflow.cfg"
        with path.open("w") as out:
            cfg.write(out)
        path.chmod(0o600)

    def _bundles(self) -> list[dict[str, object]]:
        """The DAG bundles: the repository's dags/ (Airflow's default), and ``extra_dags`` when given."""
        local = "airflow.dag_processing.bundles.local.LocalDagBundle"
        bundles: list[dict[str, object]] = [{"name": "dags-folder", "classpath": local, "kwargs": {}}]
        if self.options.extra_dags is not None:
            bundles.append({"name": "extra-dags", "classpath": local, "kwargs": {"path": str(self.options.extra_dags)}})
        return bundles

    def _write_passwords(self) -> None:
        """SimpleAuthManager keeps {user: password} in this file and generates only the missing ones."""
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({ADMIN: self.secrets.admin_password}) + "\n"
        )

    def airflow(self, *args: str) -> None:
        """One `airflow` CLI command on this instance, its output appended to logs/components/airflow-<command>.log."""
        log = self.logs / f"airflow-{args[0]}.log"
        with log.open("ab") as out:
            done = subprocess.run(  # noqa: S603 (the venv's own airflow)
                [sys.executable, "-m", "airflow", *args], env=self.env, stdout=out, stderr=out, check=False
            )
        if done.returncode != 0:
            last = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise RuntimeError(f"`airflow {' '.join(args)}` failed ({done.returncode}), see {log}: {last}")

    def simulator_command(self) -> list[str]:
        """``python -m wecom_simulator`` with this stack's company, secret and callback target."""
        s = self.secrets
        return [
            *(sys.executable, "-m", "wecom_simulator"),
            *flags(port=0, members=self.options.members, departments=self.options.departments),
            *flags(corp_id=CORP_ID, secret=s.corp_secret),
            # a callback is pushed to the receiver the API server mounts (plugins/wecom/plugin.py)
            *flags(callback_url=f"{self.base_url}/wecom/callback/wecom_default"),
            *flags(callback_token=s.callback_token, callback_aes_key=s.encoding_aes_key),
        ]

    def start_simulator(self) -> str:
        """Start the simulator; its base URL, the first line it prints."""
        self.logs.mkdir(parents=True, exist_ok=True)
        process = self._spawn("simulator", self.simulator_command())
        log = self.logs / "simulator.log"
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while not (first := log.read_text().partition("\n"))[1]:
            if process.poll() is not None:
                raise RuntimeError(f"the WeCom simulator exited: see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the WeCom simulator printed no URL in {STARTUP_DEADLINE_S:.0f} s: see {log}")
            time.sleep(0.1)
        return first[0].strip()

    def _register_connections(self) -> None:
        """Both connections in the metadata database (`connections import --overwrite`: a rerun updates them)."""
        s = self.secrets
        connections = {
            "wecom_default": {
                "conn_type": "wecom",
                "description": "The local WeCom simulator (make airflow)",
                "host": self.simulator_url,
                "login": CORP_ID,
                "password": s.corp_secret,
                "extra": json.dumps({"callback_token": s.callback_token, "callback_aes_secret": s.encoding_aes_key}),
            },
            "wecom_target_db": {
                "conn_type": "sqlite",
                "description": "Where the directory lands (make airflow)",
                "host": str(self.target_db),
            },
        }
        path = self.home / "connections.json"
        path.write_text(json.dumps(connections))
        path.chmod(0o600)
        try:
            self.airflow("connections", "import", "--overwrite", str(path))
        finally:
            path.unlink()

    def _spawn(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 (commands built here)
                command,
                env=self.env | (extra_env or {}),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as a whole, not by the terminal's Ctrl-C
            )
        self.processes[name] = process
        return process

    def _wait_healthy(self, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}: see {self.logs / name}.log")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                status = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
                if all(status.get(part, {}).get("status") == "healthy" for part in HEALTHY):
                    return
            time.sleep(1)
        raise RuntimeError(f"Airflow not healthy after {timeout_s:.0f} s: {status}; logs in {self.logs}")


def banner(stack: AirflowLocal) -> str:
    s = stack.secrets
    single_user = "" if stack.options.postgres else "\n  SQLite is single-user: for backfills, make airflow DB=postgres"
    return f"""
Airflow is up: {stack.base_url}
  login: {ADMIN} / {s.admin_password}
  first: unpause and trigger wecom_directory_sync (DAGs list), then open "WeCom" in the left nav
  metadata database: {stack.metadata_url.split("@")[-1]}   executor: {stack.options.executor}{single_user}
  WeCom simulator: {stack.simulator_url} (corp id {CORP_ID}); edit a member to push a callback:
    curl -X PATCH {stack.simulator_url}/_sim/users/<userid> -d '{{"position": "Data engineer"}}'
  directory tables: {stack.target_db}   component logs: {stack.logs}
  their assets (a DAG scheduled on one runs when a sync or callback changed it): sqlite://localhost{stack.target_db}/<table>
  the CLI on this instance: AIRFLOW_HOME={stack.home} .venv/bin/airflow dags list
Ctrl-C stops everything."""


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="metadata in a throwaway PostgreSQL 15 cluster")
    parser.add_argument(
        "--executor", choices=("local", "celery"), default="local", help="default local; celery implies --postgres"
    )
    parser.add_argument("--port", type=int, default=8080, help="the UI and API port (default 8080)")
    parser.add_argument("--home", type=Path, default=Options.home, help="the Airflow home (default var/airflow)")
    parser.add_argument("--members", type=int, default=Options.members, help="simulated members (default 500)")
    parser.add_argument("--dags", type=Path, help="a folder of your own DAGs, parsed beside the package's")
    args = parser.parse_args(argv)
    return Options(
        home=args.home.resolve(),
        executor=args.executor,
        # Celery's workers and result backend write the metadata database concurrently: not SQLite
        postgres=args.postgres or args.executor == "celery",
        port=args.port,
        members=args.members,
        extra_dags=None if args.dags is None else args.dags.resolve(),
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    # Ctrl-C and SIGTERM both stop the stack, even when started with SIGINT ignored (`cmd &` in a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stack = AirflowLocal(options)
    print(f"starting Airflow in {options.home} (component logs: {stack.logs}) ...", flush=True)
    try:
        with stack:
            print(banner(stack), flush=True)
            while all(p.poll() is None for p in stack.processes.values()):
                time.sleep(1)
            stopped = [name for name, p in stack.processes.items() if p.poll() is not None]
            print(f"{', '.join(stopped)} stopped: see {stack.logs}; stopping the rest", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    except RuntimeError as error:
        print(f"make airflow: {error}", file=sys.stderr)
        return 1
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
