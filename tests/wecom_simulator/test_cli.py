"""``python -m wecom_simulator`` as a person or a benchmark runs it: a subprocess that says how to connect.

The subprocess tests read the printed text the way a user would copy it, connect
with the project's own client and Airflow hook, push callbacks to a local
receiver, and stop the simulator with the signals a terminal or a supervisor sends.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.support.waiting import DEADLINE_S, wait_for
from tests.wecom_simulator.helpers import AES_KEY, CALLBACK_TOKEN, Api, Receiver
from tests.wecom_simulator.test_api import assert_error
from wecom.api.client import WeComClient
from wecom.api.crypto import WeComCrypto
from wecom.errors import WeComPermissionError
from wecom_simulator.app import create_app
from wecom_simulator.cli import build_parser, config_settings
from wecom_simulator.cli_text import LAST_LINE
from wecom_simulator.config import SimulatorConfig
from wecom_simulator.org import generate_org
from wecom_simulator.state import SimulatorState

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
SMALL = ["--port", "0", "--members", "40", "--departments", "5"]


def settings(argv: list[str]) -> dict[str, object]:
    return config_settings(build_parser().parse_args(argv))


def help_text(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    return " ".join(capsys.readouterr().out.split())


class Simulator:
    """A simulator subprocess and what it printed up to its last startup line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        assert process.stdout is not None
        while (line := process.stdout.readline()) and line.rstrip("\n") != LAST_LINE:
            self.lines.append(line.rstrip("\n"))
        assert line, f"the simulator exited early: {process.communicate(timeout=10)}"
        self.base_url = self.lines[0]

    def printed(self, prefix: str) -> str:
        """The command printed on the line starting with ``prefix`` (after the indent), as a shell would read it."""
        [line] = [line.strip() for line in self.lines if line.strip().startswith(prefix)]
        return line

    def connection(self) -> dict[str, object]:
        """The JSON of the printed ``export AIRFLOW_CONN_WECOM_DEFAULT=...`` line."""
        words = shlex.split(self.printed("export AIRFLOW_CONN_WECOM_DEFAULT="))
        return json.loads(words[1].partition("=")[2])

    def connection_uri(self) -> str:
        return shlex.split(self.printed("airflow connections add"))[-1]

    def stop(self, sig: int) -> tuple[int, str]:
        self.process.send_signal(sig)
        _, stderr = self.process.communicate(timeout=DEADLINE_S)
        return self.process.returncode, stderr


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "wecom_simulator", *SMALL, *args]


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]), **extra}


def refused(*args: str) -> subprocess.CompletedProcess[str]:
    """A start that must fail: its exit code and output."""
    return subprocess.run(command(*args), env=environment(), capture_output=True, text=True, timeout=60, check=False)


@contextmanager
def started(*args: str, tmpdir: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    """The simulator's process, killed on the way out if a test left it running."""
    env = environment() if tmpdir is None else environment(TMPDIR=str(tmpdir))
    process = subprocess.Popen(command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=DEADLINE_S)


@contextmanager
def simulator(*args: str, tmpdir: Path | None = None) -> Iterator[Simulator]:
    with started(*args, tmpdir=tmpdir) as process:
        yield Simulator(process)


# -- flags and help ----------------------------------------------------------------------------------


def test_flags_map_onto_settings() -> None:
    given = settings(
        ["--port", "0", "--out-of-scope-departments", "7,9", "--regime", "withheld", "--callback-form", "ids_only",
         "--rate-limit-per-minute", "5", "--list-id-last-cursor", "missing"]
    )  # fmt: skip
    assert given["out_of_scope_departments"] == {7, 9}
    ranged = settings(["--app-secret", "app", "--visible-range", "app=2,4"])
    assert SimulatorConfig.create(**ranged).visible_ranges == {"app": {2, 4}}
    assert (given["regime"], given["callback_form"]) == ("withheld", "ids_only")
    assert (given["rate_limit_per_minute"], given["list_id_last_cursor"], given["secret"]) == (
        5,
        "missing",
        "s3cret-value",
    )
    assert not {"secret_kind", "new_ips", "app_secrets", "app_forbidden_apis"} & set(given), "left to --regime"
    assert not {"port", "members", "faults", "callback_url"} & set(given), "not SimulatorConfig settings"


def test_rights_flags_build_the_credentials_and_ips() -> None:
    given = settings(
        ["--app-secret", "app-one", "--app-secret", "app-two=old_app", "--new-ip", "127.0.0.2", "--new-ip", "10.0.0.9",
         "--app-forbidden-apis", "user/list_id,export/user", "--secret-kind", "old_app"]
    )  # fmt: skip
    assert given["app_secrets"] == {"app-one": "new_app", "app-two": "old_app"}
    assert given["new_ips"] == ["127.0.0.2", "10.0.0.9"] and given["secret_kind"] == "old_app"
    config = SimulatorConfig.create(**given)
    assert config.app_forbidden_apis == {"user/list_id", "export/user"} and config.regime == "custom"


def test_faults_are_read_in_order_and_bad_ones_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["--fault", "user/get:errcode=48009:times=3", "--fault", "export_file:truncated"])
    assert [(f.endpoint, f.errcode, f.times, f.truncated) for f in args.faults] == [
        ("user/get", 48009, 3, False), ("export_file", None, 1, True),
    ]  # fmt: skip
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fault", "/cgi-bin/user/get:errcode=1"])
    error = capsys.readouterr().err
    assert "unknown endpoint '/cgi-bin/user/get'" in error and "user/get" in error and "Traceback" not in error


def test_help_explains_each_regime_in_wecoms_terms(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys)
    for regime in ("full", "withheld", "ids_only"):
        assert f"{regime} " in text
    for fact in ("created after 2022-06-20", "added to its trusted IPs after 2022-08-15", "48009", "48002",
                 "callback URL set after 2022-08-15", "update_party fires only when the parent changes"):  # fmt: skip
        assert fact in text, fact


def test_help_gives_the_defaults_the_fault_syntax_and_every_admin_route(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys)
    for fact in ("--corp-id ID the corp id clients send (default wwtestcorp)",
                 "--secret SECRET the secret clients send (default s3cret-value)",
                 "--members N members (default 1000)", "--port N port; 0 picks a free one (default 8081)",
                 "times=N|forever", "match=NAME=V", "body=TEXT", "truncated", "delay_s=S", "http_status=N",
                 "--callback-url URL", "--callback-token TOKEN", "--callback-aes-key KEY"):  # fmt: skip
        assert fact in text, fact
    app = create_app(SimulatorState(generate_org(members=3, departments=2)))
    admin_paths = {route.path for route in app.routes if route.path.startswith("/_sim/")}  # type: ignore[attr-defined]
    for path in admin_paths:
        shown = path.replace("{userid}", "ID").replace("{dept_id}", "ID").replace("{tag_id}", "ID")
        assert shown in text, f"{path} is not in --help"


# -- the running CLI (a process each: marked `process`) ------------------------------------------------


@pytest.mark.process
def test_printed_connection_reaches_the_simulator_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    with simulator(
        "--corp-id", "wwcli", "--secret", "cli-secret", "--fault", "user/get:errcode=48009", tmpdir=tmp_path
    ) as sim:
        assert sim.base_url.startswith("http://127.0.0.1:") and sim.base_url == sim.base_url.strip()
        assert "corp id: wwcli   secret: cli-secret" in sim.lines
        assert any(line.startswith("faults waiting: user/get") for line in sim.lines)
        conn = sim.connection()
        assert conn == {"conn_type": "wecom", "host": sim.base_url, "login": "wwcli", "password": "cli-secret"}
        client = WeComClient(str(conn["host"]), str(conn["login"]), str(conn["password"]), encoding_aes_key=AES_KEY)
        with client:
            assert len(client.department_list()) == 5
            with pytest.raises(WeComPermissionError, match="48009"):
                client.user_get("anyone")
            assert client.user_get(client.user_list(1)[0]["userid"]), "the fault was used up"
            jobid = client.export_start("department")
            wait_for(lambda: client.export_result(jobid)["status"] == 2, DEADLINE_S, "the export job to finish")
        assert list(tmp_path.glob("wecom-sim-export-*/*")), "the export wrote its file"
        code, stderr = sim.stop(signal.SIGINT)
    assert code == 0 and "Traceback" not in stderr, stderr
    assert stderr.strip() == "wecom simulator: stopped"
    assert not list(tmp_path.iterdir()), "export files are removed on shutdown"


@pytest.mark.process
def test_ctrl_c_during_the_start_stops_it_before_it_serves() -> None:
    """Caught while the start waits for the callback URL check (the receiver holds it): nothing served."""
    given = ["--callback-token", CALLBACK_TOKEN, "--callback-aes-key", AES_KEY, "--callback-verify"]
    with Receiver() as receiver:
        receiver.hold_url_check = True
        with started("--callback-url", receiver.url, *given) as process:
            assert receiver.holding.wait(DEADLINE_S), "the URL check never came"
            process.send_signal(signal.SIGINT)
            receiver.release()
            stdout, stderr = process.communicate(timeout=DEADLINE_S)
    assert (process.returncode, stdout, stderr) == (0, "", "wecom simulator: stopped\n")


@pytest.mark.process
def test_ctrl_c_while_a_callback_is_being_delivered() -> None:
    """The receiver holds the POST of an edit's event: Ctrl-C still stops everything, with the closing line."""
    given = ["--callback-token", CALLBACK_TOKEN, "--callback-aes-key", AES_KEY]
    with Receiver() as receiver, simulator("--callback-url", receiver.url, *given) as sim:
        receiver.hold_next = 1
        edit = shlex.split(sim.printed("curl -X PATCH"))
        requests.patch(edit[3], data=edit[5], timeout=DEADLINE_S).raise_for_status()
        assert receiver.holding.wait(DEADLINE_S), "the event was never posted"
        code, stderr = sim.stop(signal.SIGINT)
    assert (code, stderr) == (0, "wecom simulator: stopped\n")


@pytest.mark.process
def test_sigterm_stops_it_cleanly_with_the_rights_given() -> None:
    with simulator(
        "--corp-id", "wwcli", "--secret", "cli-secret", "--regime", "ids_only", "--app-secret", "cli-app"
    ) as sim:
        assert requests.get(sim.base_url + "/_sim/stats", timeout=5).json()["members"] == 40
        api = Api(sim.base_url, "wwcli", "cli-secret")
        assert_error(api.get("department/list"), 48009)
        assert api.get("department/simplelist")["errcode"] == 0
        app = Api(sim.base_url, "wwcli", "cli-app")
        assert app.get("department/list")["errcode"] == 0, "the new-IP rule is the contact-sync assistant's"
        assert_error(app.post("user/list_id", {"limit": 5}), 48002)
        requests.post(sim.base_url + "/_sim/regime", json={"regime": "full"}, timeout=5).raise_for_status()
        assert api.get("department/list")["errcode"] == 0
        code, stderr = sim.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in stderr, stderr


@pytest.mark.process
def test_printed_callback_settings_seal_the_pushed_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Token and key generated: the printed connection is all a receiver needs, in either Airflow form."""
    # Imported here: it loads Airflow, which only this test needs.
    from wecom.hooks.wecom import WeComHook

    with Receiver() as receiver, simulator("--callback-url", receiver.url) as sim:
        extra = sim.connection()["extra"]
        assert isinstance(extra, dict) and set(extra) == {"callback_token", "callback_aes_secret"}
        receiver.crypto = WeComCrypto(extra["callback_token"], extra["callback_aes_secret"], "wwtestcorp")
        assert any(receiver.url in line for line in sim.lines)
        edit, flush = (shlex.split(sim.printed(f"curl -X {method}")) for method in ("PATCH", "POST"))
        response = requests.patch(edit[3], data=edit[5], timeout=5)
        assert response.status_code == 200 and response.json()["changes"][0]["change_type"] == "update_user"
        assert requests.post(flush[3], timeout=15).json() == {"ok": True}
        [event] = receiver.parsed()
        assert (event["ChangeType"], event["Position"]) == ("update_user", "Data engineer")
        for form in (json.dumps(sim.connection()), sim.connection_uri()):
            monkeypatch.setenv("AIRFLOW_CONN_WECOM_DEFAULT", form)
            hook_settings = WeComHook("wecom_default").settings
            assert (hook_settings.base_url, hook_settings.corp_id, hook_settings.secret) == (
                sim.base_url, "wwtestcorp", "s3cret-value",
            )  # fmt: skip
            assert (hook_settings.callback_token, hook_settings.encoding_aes_key) == (
                extra["callback_token"], extra["callback_aes_secret"],
            )  # fmt: skip
        assert sim.stop(signal.SIGINT)[0] == 0


@pytest.mark.process
def test_callback_url_check_passes_or_stops_the_start_in_one_line() -> None:
    given = ["--callback-token", CALLBACK_TOKEN, "--callback-aes-key", AES_KEY, "--callback-verify"]
    with Receiver() as receiver, simulator("--callback-url", receiver.url, *given) as sim:
        assert sim.stop(signal.SIGINT)[0] == 0
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{unused.getsockname()[1]}/callback"
    done = refused("--callback-url", nobody, *given)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"wecom simulator: callbacks to {nobody}: URL check failed")
    assert len(done.stderr.splitlines()) == 1 and CALLBACK_TOKEN not in done.stderr and AES_KEY not in done.stderr


@pytest.mark.process
def test_a_busy_port_is_one_line_and_exit_code_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = refused("--port", port)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"wecom simulator: cannot listen on 127.0.0.1:{port}: Address already in use\n"
