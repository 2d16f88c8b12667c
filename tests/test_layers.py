"""The package's layers, read from the source with ``ast``: imports point one way only.

The pure core (every ``wecom`` module outside the Airflow layer; the simulator is a dev tool in devtools/) runs and is
tested without Airflow; the Airflow layer (hooks, operators, sensors, triggers, notifications,
the plugin, the provider entry point, the DAGs' task glue) sits on top of it. Leaf modules and
the modules every Airflow process loads (through the provider and plugin entry points) stay
light, so ``import airflow.sdk`` does not pull in pandas, pyarrow or pycryptodome.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
AIRFLOW_LAYER = (
    "wecom.hooks",
    "wecom.operators",
    "wecom.sensors",
    "wecom.triggers",
    "wecom.notifications",
    "wecom.plugin",
    "wecom.provider_info",
    "wecom.airflow_tasks",
    "wecom.receiver",
    "wecom.lineage",
    "wecom.config",
    "wecom.task_failures",
    "wecom.company_context",
    "wecom.compat",
)
LEAVES = ("wecom.runs", "wecom.settings", "wecom.errors", "wecom.constants", "wecom.provider_info")
HEAVY = ("pandas", "pyarrow", "numpy", "Crypto", "sqlalchemy")
# Loaded by every Airflow component that loads providers and plugins, or by the triggerer.
ENTRY_POINTS = ("wecom.provider_info", "wecom.plugin", "wecom.triggers", "wecom.sensors")
ENTRY_POINT_HEAVY = ("pandas", "pyarrow", "numpy", "Crypto")


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@cache
def modules() -> dict[str, Path]:
    """Every module of the ``wecom`` package by dotted name (packages by their ``__init__``)."""
    found = {}
    for path in sorted((PLUGINS / "wecom").rglob("*.py")):
        parts = path.relative_to(PLUGINS).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


CORE = sorted(m for m in modules() if not _within(m, AIRFLOW_LAYER))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST, at_import_time: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements; ``at_import_time`` skips function bodies and ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif at_import_time and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        elif at_import_time and isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _import_nodes(child, at_import_time))
        else:
            yield from _import_nodes(node, at_import_time)


@cache
def imports(module: str, at_import_time: bool) -> frozenset[str]:
    """Dotted names ``module`` imports (``from a import b`` gives ``a`` and ``a.b``), relative ones resolved."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8")), at_import_time):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        names.add(base)
        names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _loaded(module: str) -> dict[str, str]:
    """What importing ``module`` loads (its package parents, and every import run at import time,
    transitively), each name mapped to the chain of modules through which it is loaded."""
    via = {module: module}
    todo = [module]
    while todo:
        current = todo.pop(0)
        parents = [".".join(current.split(".")[:i]) for i in range(1, current.count(".") + 1)]
        found = [m for m in parents if m in modules()]
        found += sorted(imports(current, at_import_time=True)) if current in modules() else []
        for name in found:
            if name not in via:
                via[name] = f"{via[current]} -> {name}"
                todo.append(name)
    return via


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _heavy(loaded: dict[str, str], packages: tuple[str, ...]) -> list[str]:
    """For each of ``packages`` that is loaded, the shortest chain that loads it."""
    shortest: dict[str, str] = {}
    for name, chain in loaded.items():
        top = _top(name)
        if top in packages and (top not in shortest or chain.count("->") < shortest[top].count("->")):
            shortest[top] = chain.rsplit(" -> ", 1)[0] + f" -> {top}"
    return sorted(shortest.values())


def test_the_layout_is_what_these_rules_read() -> None:
    """Guards the rules below against passing vacuously after a move."""
    assert len(CORE) > 10
    assert {"wecom.runs", "wecom.settings", "wecom.errors"} <= set(CORE)
    assert all(m in modules() for m in LEAVES)
    assert [m for m in modules() if _within(m, ("wecom.hooks",))]


@pytest.mark.parametrize("module", CORE)
def test_the_core_never_imports_airflow(module: str) -> None:
    found = sorted(n for n in imports(module, at_import_time=False) if _top(n) == "airflow")
    assert not found, f"{module} imports {', '.join(found)}"


@pytest.mark.parametrize("module", CORE)
def test_the_core_never_imports_the_airflow_layer(module: str) -> None:
    found = sorted(n for n in imports(module, at_import_time=False) if _within(n, AIRFLOW_LAYER))
    assert not found, f"{module} imports {', '.join(found)}"


@pytest.mark.parametrize("module", LEAVES)
def test_leaf_modules_load_nothing_heavy(module: str) -> None:
    found = _heavy(_loaded(module), HEAVY)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("prefix", ENTRY_POINTS)
def test_airflow_entry_points_load_no_pandas_pyarrow_or_pycryptodome(prefix: str) -> None:
    loaded = {n: c for m in modules() if _within(m, (prefix,)) for n, c in _loaded(m).items()}
    found = _heavy(loaded, ENTRY_POINT_HEAVY)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", sorted(modules()))
def test_airflow_is_reached_through_its_public_interface_only(module: str) -> None:
    """No ``airflow._…`` module (nor ``airflow.sdk._…``) and no private process switch: what Airflow does
    not offer publicly is worked around in ``wecom.compat``, which names the upstream issue, or not at all."""
    private = sorted(
        n for n in imports(module, at_import_time=False) if _top(n) == "airflow" and "._" in n.replace("__", "")
    )
    assert not private, f"{module} imports {', '.join(private)}"
    assert "_AIRFLOW_PROCESS_CONTEXT" not in modules()[module].read_text(encoding="utf-8"), module


def test_the_import_reader_sees_lazy_and_relative_imports() -> None:
    """The reader itself: an import inside a function counts for the layer rules but not for import-time weight."""
    source = "import os\nfrom . import sibling\n\ndef f():\n    import airflow.sdk\n"
    tree = ast.parse(source)
    eager = {a.name for n in _import_nodes(tree, at_import_time=True) for a in n.names}
    every = {a.name for n in _import_nodes(tree, at_import_time=False) for a in n.names}
    assert eager == {"os", "sibling"}
    assert every == {"os", "sibling", "airflow.sdk"}


DAGS = PLUGINS.parent / "dags"
# Parsed by the dag-processor every few minutes and by every task process before it runs: the
# tasks that need pandas or pyarrow import them when they run, not when the file is parsed.
DAG_FILE_HEAVY = ("pandas", "pyarrow", "numpy", "Crypto", "orjson")


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_dag_files_load_nothing_heavy_when_parsed(dag_file: str) -> None:
    names = set()
    for node in _import_nodes(ast.parse((DAGS / dag_file).read_text(encoding="utf-8")), at_import_time=True):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif node.module:
            names.update({node.module} | {f"{node.module}.{alias.name}" for alias in node.names})
    loaded = {dag_file: dag_file}
    for name in sorted(names):
        loaded.setdefault(name, f"{dag_file} -> {name}")
        if name in modules():
            loaded |= {k: f"{dag_file} -> {v}" for k, v in _loaded(name).items() if k not in loaded}
    found = _heavy(loaded, DAG_FILE_HEAVY)
    assert not found, "\n".join(found)
