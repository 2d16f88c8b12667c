"""Names that say what they hold, read from the source with ``ast``: the runtime package and the DAG files.

No two classes share a name (an import would say which one it means only by its module), every
exception class lives in ``wecom.errors`` (one place to look up what can go wrong), and every
logger is named after its module (a log line leads to the code that wrote it).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = [*sorted((ROOT / "plugins" / "wecom").rglob("*.py")), *sorted((ROOT / "dags").glob("*.py"))]
ERRORS_MODULE = ROOT / "plugins" / "wecom" / "errors.py"


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def classes(path: Path) -> list[ast.ClassDef]:
    return [node for node in ast.walk(tree(path)) if isinstance(node, ast.ClassDef)]


def base_names(node: ast.ClassDef) -> set[str]:
    return {base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases}


def is_exception_name(name: str) -> bool:
    """Python's, Airflow's and our exception classes all end so (``ValueError``, ``AirflowException``)."""
    return name.endswith(("Error", "Exception"))


def exception_names() -> set[str]:
    """Every class defined here that derives from an exception, directly or through another class here."""
    known: set[str] = set()
    while True:
        found = {
            node.name
            for path in RUNTIME
            for node in classes(path)
            if any(is_exception_name(base) or base in known for base in base_names(node))
        }
        if found <= known:
            return known
        known |= found


def where(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_no_two_classes_share_a_name() -> None:
    defined: dict[str, list[str]] = defaultdict(list)
    for path in RUNTIME:
        for node in classes(path):
            defined[node.name].append(f"{where(path)}:{node.lineno}")
    assert {name: places for name, places in defined.items() if len(places) > 1} == {}


def test_every_exception_class_lives_in_wecom_errors() -> None:
    exceptions = exception_names()
    elsewhere = [
        f"{where(path)}:{node.lineno} {node.name}"
        for path in RUNTIME
        if path != ERRORS_MODULE
        for node in classes(path)
        if node.name in exceptions
    ]
    assert elsewhere == []


def test_every_logger_is_named_after_its_module() -> None:
    misnamed = [
        f"{where(path)}:{node.lineno} {ast.unparse(node)}"
        for path in RUNTIME
        for node in ast.walk(tree(path))
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) in ("logging.getLogger", "getLogger")
        and [ast.unparse(arg) for arg in node.args] != ["__name__"]
        and not (
            node.args and isinstance(node.args[0], ast.Constant) and not str(node.args[0].value).startswith("wecom")
        )
    ]
    assert misnamed == []
