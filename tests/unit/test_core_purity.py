"""The voting core imports nothing but the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import voting

CORE = Path(voting.__file__).parent
MODULES = sorted(CORE.rglob("*.py"))


def _imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # A relative import (level > 0) stays inside the package.
            roots.add("voting" if node.level else (node.module or "").split(".")[0])
    return roots


def test_the_core_has_modules_to_check() -> None:
    assert {p.stem for p in MODULES} >= {"model", "identity", "grammar", "rules", "tally"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.stem} imports only the stdlib")
def test_a_core_module_imports_only_the_standard_library(path: Path) -> None:
    allowed = set(sys.stdlib_module_names) | {"voting", "__future__"}
    foreign = _imported_roots(path.read_text(encoding="utf-8")) - allowed
    assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_the_import_walker_sees_a_third_party_import() -> None:
    source = "import os\nfrom flask import Flask\nfrom . import model\nimport sqlalchemy.orm\n"
    assert _imported_roots(source) == {"os", "flask", "voting", "sqlalchemy"}
