"""The vulture whitelists stay minimal: every name in them is still defined where they say, and the names
they excuse because a template or ``dataclasses.fields`` reads them are read there.

A stale entry is worse than none: it keeps excusing any later code that happens to take the name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "dags").glob("*.py")]
DEV = [p for folder in ("devtools", "tests", "bench", "scripts") for p in (ROOT / folder).rglob("*.py")]
TEMPLATES = (ROOT / "plugins" / "wecom" / "status" / "templates").glob("*.html")


def sections(whitelist: Path) -> dict[str, list[str]]:
    """The whitelist's names under the comment block that says who reads them."""
    found: dict[str, list[str]] = {}
    heading, in_comment = "", False
    for line in whitelist.read_text(encoding="utf-8").split('"""', 2)[2].splitlines():
        if line.startswith("#"):
            heading, in_comment = (f"{heading} {line}" if in_comment else line), True
        else:
            in_comment = False
            if line.strip():
                found.setdefault(heading, []).append(line.strip().removeprefix("_."))
    return found


def defined_names(paths: list[Path]) -> set[str]:
    """Every name the code defines: functions, classes, parameters, assigned names and attributes."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.id if isinstance(node, ast.Name) else node.attr)
    return names


@pytest.mark.parametrize(
    ("whitelist", "code"), [(".ci/vulture_whitelist.py", RUNTIME), (".ci/vulture_whitelist_dev.py", DEV)]
)
def test_every_whitelisted_name_is_defined_in_the_code_it_excuses(whitelist: str, code: list[Path]) -> None:
    names = [name for names in sections(ROOT / whitelist).values() for name in names]
    assert names, whitelist
    assert sorted(set(names) - defined_names(code)) == []


def test_names_excused_for_the_templates_are_read_by_a_template() -> None:
    (names,) = [names for heading, names in sections(ROOT / ".ci/vulture_whitelist.py").items() if "Jinja" in heading]
    read = set(re.findall(r"\.([A-Za-z_]\w*)", "".join(path.read_text(encoding="utf-8") for path in TEMPLATES)))
    assert sorted(set(names) - read) == []


def test_names_excused_for_dataclasses_fields_are_snapshot_fields() -> None:
    (names,) = [names for heading, names in sections(ROOT / ".ci/vulture_whitelist.py").items() if "fields(" in heading]
    module = ast.parse((ROOT / "plugins/wecom/directory/transform.py").read_text(encoding="utf-8"))
    (snapshot,) = [node for node in module.body if isinstance(node, ast.ClassDef) and node.name == "Snapshot"]
    fields = {node.target.id for node in snapshot.body if isinstance(node, ast.AnnAssign)}
    assert set(names) <= fields
