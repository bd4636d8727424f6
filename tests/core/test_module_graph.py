"""The core's modules import one another in one direction only (issue 11).

A value module (``headers``, ``events``) never imports the writer that serializes
it; with no circle, each module can be read, and tested, on top of those below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "onehop" / "core"


def _core_imports(path: Path) -> set[str]:
    """Core modules *path* imports, at run time or for type checking alike."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "onehop.core."):
            names.add(node.module.removeprefix("onehop.core."))
    return names


def test_core_modules_import_without_a_circle() -> None:
    graph = {p.stem: _core_imports(p) for p in CORE.glob("*.py") if p.stem != "__init__"}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph[module]:
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_values_do_not_import_their_writer() -> None:
    for value in ("headers", "events", "syntax", "framing", "state"):
        assert not _core_imports(CORE / f"{value}.py") & {"writer", "head", "connection"}, value
