"""Every default of the package is defined once, in ``wecom.constants``: a parameter that takes one of
them refers to the constant, never repeats its value, so the walk, the applier and the docs cannot drift
apart again (issue 21.1: 8 workers in one path and 16 in another)."""

from __future__ import annotations

import ast
from pathlib import Path

from wecom import constants

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = [*(ROOT / "plugins" / "wecom").rglob("*.py"), *(ROOT / "dags").glob("*.py")]
# Parameters whose default is one of the package's defaults.
DEFAULTED = {
    "max_workers": constants.DEFAULT_MAX_WORKERS,
    "max_attempts": constants.DEFAULT_MAX_ATTEMPTS,
    "poll_interval": constants.DEFAULT_POLL_INTERVAL_S,
    "wecom_conn_id": constants.DEFAULT_WECOM_CONN_ID,
    "target_conn_id": constants.DEFAULT_TARGET_CONN_ID,
    "base_url": constants.DEFAULT_BASE_URL,
}


def literal_defaults(path: Path) -> list[str]:
    """``file:line name=value`` for each parameter in ``DEFAULTED`` given a literal default."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        pairs = [*zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)]
        pairs += [(arg, default) for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True) if default]
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno} {arg.arg}={default.value!r}"
            for arg, default in pairs
            if arg.arg in DEFAULTED and isinstance(default, ast.Constant) and default.value is not None
        ]
    return found


def test_parameters_take_the_packages_defaults_from_the_constants() -> None:
    assert [line for path in sorted(RUNTIME) for line in literal_defaults(path)] == []


def test_the_api_host_is_written_once() -> None:
    """In code, that is: docstrings and comments may show it to the reader."""
    written = []
    for path in sorted(RUNTIME):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        written += [
            str(path.relative_to(ROOT))
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "qyapi.weixin.qq.com" in node.value
            and id(node) not in docstrings
        ]
    assert written == ["plugins/wecom/constants.py"]
