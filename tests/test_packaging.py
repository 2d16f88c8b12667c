"""The wheel as a deployment installs it, and the pins it is tested with.

The wheel is built from a copy of the sources (an in-tree build would leave ``build/`` and an
egg-info in ``plugins/``, which is on ``sys.path`` and would register the entry points twice),
without build isolation so it needs no network, then installed into a throwaway venv that sees
this venv's third-party packages but not the checkout, and run from outside the checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib.metadata import distributions
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from wecom.store.loader import DirectoryLoader

# builds the wheel and installs it in a throwaway venv
pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]
SQL = ROOT / "include" / "sql"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")

# Run by the installed package in the throwaway venv, with the checkout nowhere on its path.
PROBE = """
import json, sys
import wecom, wecom.store.sql
from sqlalchemy import create_engine, inspect
from wecom.store.loader import DirectoryLoader

engine = create_engine(f"sqlite:///{sys.argv[1]}")
DirectoryLoader(engine).ensure_schema()
try:
    import wecom_simulator
    simulator = True
except ModuleNotFoundError:
    simulator = False
found = {"package": wecom.__file__, "schema": str(wecom.store.sql.sql_dir().joinpath("schema"))}
found |= {"simulator": simulator, "tables": sorted(inspect(engine).get_table_names())}
print(json.dumps(found))
"""


def _run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, check=False, **kwargs)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "setup.py"):
        shutil.copy(ROOT / name, src / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "plugins" / "wecom", src / "plugins" / "wecom", ignore=junk)
    shutil.copytree(SQL, src / "include" / "sql")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, src)
    (built,) = dist.glob("*.whl")
    return built


def test_the_wheel_ships_every_sql_file_and_no_simulator_or_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.removeprefix("wecom/sql_files/") for n in names if n.startswith("wecom/sql_files/")}
    assert shipped == {str(p.relative_to(SQL)) for p in SQL.rglob("*.sql")}
    assert "wecom/store/sql.py" in names and "wecom/store/loader.py" in names
    assert not [n for n in names if n.startswith(("wecom_simulator/", "tests/")) or "/tests/" in n]


def test_the_installed_wheel_creates_the_schema_from_its_own_sql_files(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # like --system-site-packages, but this venv's packages: a path line runs none of their .pth files,
    # so the checkout's editable install stays invisible
    (site / "shared-site-packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheel)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = _run(python, "-c", PROBE, tmp_path / "installed.db", cwd=tmp_path, env=env)
    found = json.loads(probe.stdout.strip().splitlines()[-1])

    assert Path(found["package"]).is_relative_to(site)
    assert Path(found["schema"]).is_relative_to(site / "wecom" / "sql_files")
    assert found["simulator"] is False
    reference = create_engine(f"sqlite:///{tmp_path / 'checkout.db'}")
    DirectoryLoader(reference).ensure_schema()
    assert found["tables"] == sorted(inspect(reference).get_table_names())
    assert "wecom_users" in found["tables"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: {line!r} is not pinned exactly (name==version)"
        pins[_normal(match[1])] = match[2]
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_are_pinned_and_agree_with_the_constraints() -> None:
    constraints = _pins(ROOT / "constraints.txt")
    runtime, dev = _pins(ROOT / "requirements.txt"), _pins(ROOT / "requirements-dev.txt")
    assert not runtime.keys() & dev.keys(), "requirements-dev.txt adds to requirements.txt (-r), never repeats it"
    for name, version in (runtime | dev).items():
        assert constraints.get(name) == version, f"{name}=={version} is pinned differently in constraints.txt"


def test_the_dbt_requirements_are_pinned_and_agree_with_their_constraints() -> None:
    """.venv-dbt (requirements-dbt.txt) has a constraints file of its own: dbt's pins clash with Airflow's."""
    constraints, dbt = _pins(ROOT / "constraints-dbt.txt"), _pins(ROOT / "requirements-dbt.txt")
    assert {"dbt-core", "dbt-postgres"} <= dbt.keys()
    for name, version in dbt.items():
        assert constraints.get(name) == version, f"{name}=={version} is pinned differently in constraints-dbt.txt"


def test_every_declared_dependency_is_in_the_runtime_set() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = _pins(ROOT / "requirements.txt")
    missing = [d for d in declared if _normal(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0]) not in runtime]
    assert missing == []


def test_every_installed_package_is_pinned_in_the_constraints() -> None:
    """What the tests run with is what constraints.txt pins: a package installed by hand shows up here."""
    constraints = _pins(ROOT / "constraints.txt")
    tooling = {"pip", "wecom-airflow-sync"}
    installed = {_normal(d.metadata["Name"]): d.version for d in distributions()}
    drift = {n: v for n, v in installed.items() if n not in tooling and constraints.get(n) != v}
    assert drift == {}


def test_airflow_finds_one_copy_of_our_entry_points() -> None:
    """plugins/ is on sys.path here as in Airflow: package metadata built into it would register the plugin twice."""
    assert str(ROOT / "plugins") in sys.path
    ours = [d for d in distributions() if _normal(d.metadata["Name"]) == "wecom-airflow-sync"]
    assert len(ours) == 1
    plugins = [e for e in ours[0].entry_points if e.group == "airflow.plugins"]
    assert [e.value for e in plugins] == ["wecom.plugin:WeComPlugin"]
