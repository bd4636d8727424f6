"""The import layers of STYLE.md: the core is stdlib-only and imports no other onehop package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "onehop"
FORBIDDEN_IN_CORE = {"asyncio", "socket", "ssl", "selectors", "uvloop"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_imports_only_stdlib_and_errors() -> None:
    for path in (SRC / "core").rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN_IN_CORE, f"{path.name} imports {name}"
            if top == "onehop":
                assert name.startswith(("onehop.core", "onehop.errors")), f"{path.name}: {name}"
            else:
                assert top in sys.stdlib_module_names or top == "__future__", f"{path.name}: {name}"


def test_nothing_imports_cli() -> None:
    for path in SRC.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py") and path.parent == SRC:
            continue
        assert "onehop.cli" not in _imports(path), path


def test_errors_imports_no_onehop_module() -> None:
    assert not any(n.startswith("onehop") for n in _imports(SRC / "errors.py"))
