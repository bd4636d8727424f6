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


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _all_imports(path: Path) -> set[str]:
    """Every onehop module *path* imports, anywhere in the file (TYPE_CHECKING too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("onehop"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("onehop"):
            for alias in node.names:
                # ``from onehop.proxy import hop`` imports the module hop, not the package's
                # __init__ (which Python runs too, but whose imports are its own edges).
                sub = f"{node.module}.{alias.name}"
                names.add(sub if _is_module(sub) else node.module)
    return names


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


def test_no_import_circles() -> None:
    """STYLE.md: imports run one way; a circle (even a TYPE_CHECKING one) fails the build."""
    files = {_module(p): p for p in SRC.rglob("*.py")}
    graph = {m: {n for n in _all_imports(p) if n in files and n != m} for m, p in files.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                circle = [*stack[stack.index(n):], n]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


#: Which onehop packages each package may import (STYLE.md, "Imports").
ALLOWED_IMPORTS = {
    "core": {"core", "errors"},
    "errors": set(),
    "_aio": {"_aio", "core", "errors"},
    "server": {"server", "_aio", "core", "errors"},
    "client": {"client", "_aio", "core", "errors"},
    "proxy": {"proxy", "_aio", "client", "core", "errors"},
    "probe": {"probe"},
}


def test_packages_import_only_the_layers_below() -> None:
    for path in SRC.rglob("*.py"):
        package = _package(path)
        allowed = ALLOWED_IMPORTS.get(package)
        if allowed is None:
            continue  # cli, __main__, _version: the edge may import anything
        for name in _all_imports(path):
            parts = name.split(".")
            if len(parts) < 2:
                continue
            assert parts[1] in allowed or parts[1] in ("_version",), (
                f"{path.relative_to(SRC)} imports {name}")


def _defined_private_names(paths: list[Path]) -> set[str]:
    """Private names (``_x``) that *paths* define: functions, classes, attributes
    assigned on ``self``/``cls``, class-level names and slots, module globals."""
    names: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)  # __slots__ entries
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_private_name_is_used_across_packages() -> None:
    """A package uses another's names only through its public API (review P5): no
    ``obj._private`` whose name only another package defines, no import of ``_private``."""
    by_package: dict[str, list[Path]] = {}
    for path in SRC.rglob("*.py"):
        by_package.setdefault(_package(path), []).append(path)
    own = {pkg: _defined_private_names(paths) for pkg, paths in by_package.items()}
    problems = []
    for pkg, paths in by_package.items():
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and (
                        node.module.startswith("onehop.")):
                    target = node.module.split(".")[1]
                    for alias in node.names:
                        if (alias.name.startswith("_") and target != pkg
                                and alias.name != "__version__"):
                            problems.append(f"{path.relative_to(SRC)} imports "
                                            f"{node.module}.{alias.name}")
                elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and (
                        not node.attr.startswith("__")):
                    if node.attr in own[pkg]:
                        continue
                    if any(node.attr in names for other, names in own.items() if other != pkg):
                        problems.append(f"{path.relative_to(SRC)}:{node.lineno} uses "
                                        f".{node.attr} of another package")
    assert not problems, "\n".join(sorted(problems))
