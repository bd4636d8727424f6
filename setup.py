"""Build onehop pure (the default) or with its hot modules compiled by mypyc.

``ONEHOP_COMPILE=1 pip install .`` (or ``pip wheel .``) compiles the modules listed in
``src/onehop/_compiled.py`` with the mypy pinned in ``_build/backend.py``; anything
else builds the pure-Python package from the same source. Each mode builds in its
own directory under ``build/`` (the compiled one keyed by the source, mypy and
Python), so a stale ``build/`` can never slip pure modules into a compiled wheel or
extension modules into a pure one; and a compiled build that did not produce every
extension module fails instead of installing a pure package under a compiled name.
Environment: ``ONEHOP_COMPILE`` (1: compile), ``ONEHOP_OPT_LEVEL`` (mypyc's C
optimisation level, default 3), ``MYPYC_MULTI_FILE`` (1: one C file per module,
compiled in parallel; default 1).
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "src"
sys.path.insert(0, str(ROOT / "_build"))
from backend import MYPY_PIN, compile_requested  # noqa: E402

COMPILE = compile_requested()
MODE = "compiled" if COMPILE else "pure"


def compiled_modules() -> list[str]:
    """The module list from ``src/onehop/_compiled.py``, read without importing onehop."""
    tree = ast.parse((SRC / "onehop" / "_compiled.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == (
                "COMPILED_MODULES"):
            return list(ast.literal_eval(node.value))  # type: ignore[arg-type]
    raise SystemExit("setup.py: COMPILED_MODULES not found in src/onehop/_compiled.py")


def build_key(paths: list[Path]) -> str:
    """What the compiled build depends on: every source file, mypy, Python, the options."""
    h = hashlib.sha256()
    for p in sorted((SRC / "onehop").rglob("*.py")):
        h.update(str(p.relative_to(SRC)).encode() + b"\0" + p.read_bytes())
    h.update(MYPY_PIN.encode() + sys.version.encode() + sysconfig.get_platform().encode())
    h.update(os.environ.get("ONEHOP_OPT_LEVEL", "3").encode())
    return h.hexdigest()[:12]


class BuildPy(build_py):
    """Also write ``onehop/_build_mode.py``: what this build was asked to be."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "onehop" / "_build_mode.py"
        target.write_text(f'"""Written by setup.py."""\n\nMODE = "{MODE}"\n')


class BuildExt(build_ext):
    """Build the extension modules, then check every one is there (else fail loudly)."""

    def run(self) -> None:
        super().run()
        if not COMPILE:
            return
        missing = [
            ext.name for ext in self.extensions
            if not Path(self.get_ext_fullpath(ext.name)).is_file()
        ]
        if missing:
            raise SystemExit(f"setup.py: compiled build lacks extension modules {missing}")


#: Commands that only read metadata (the backend's requirement and metadata hooks): they
#: need no extension modules, and must not need mypy before the backend installed it.
_METADATA_ONLY = {"egg_info", "dist_info", "sdist"}
_BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop"}
_commands = {arg for arg in sys.argv[1:] if not arg.startswith("-")}
metadata_only = bool(_commands & _METADATA_ONLY) and not _commands & _BUILDS

if COMPILE and "editable_wheel" in _commands:
    # An editable install would put the extension modules into src/, where they would
    # shadow the source for every later run from the tree (PYTHONPATH=src): refused.
    raise SystemExit("setup.py: the compiled build is not editable: "
                     "use ONEHOP_COMPILE=1 pip install . (or pip wheel .)")

ext_modules = []
if COMPILE and not metadata_only:
    modules = compiled_modules()
    paths = [SRC / (name.replace(".", "/") + ".py") for name in modules]
    key = build_key(paths)
    build_base = f"build/mypyc-{key}"
    os.chdir(ROOT)  # (mypyc reads the [tool.mypy] options from pyproject.toml here)
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        raise SystemExit(
            f"setup.py: ONEHOP_COMPILE=1 needs {MYPY_PIN} (the build backend adds it)"
        ) from exc
    ext_modules = mypycify(
        # (The build environment has none of the optional dependencies (websockets,
        # httpx, ...): their types are Any there, an ignore needed only with them is
        # unused, and the modules not compiled are checked by CI's mypy --strict run,
        # not here.)
        ["--ignore-missing-imports", "--follow-imports=silent", "--no-warn-unused-ignores",
         *(str(p.relative_to(ROOT)) for p in paths)],
        opt_level=os.environ.get("ONEHOP_OPT_LEVEL", "3"),
        multi_file=os.environ.get("MYPYC_MULTI_FILE", "1") == "1",
        target_dir=f"{build_base}/mypyc",
    )
    if not ext_modules:
        raise SystemExit("setup.py: mypyc produced no extension modules")
else:
    build_base = "build/compiled-metadata" if COMPILE else "build/pure"

setup(
    ext_modules=ext_modules,
    cmdclass={"build_py": BuildPy, "build_ext": BuildExt},
    options={
        "build": {"build_base": build_base},
        "build_ext": {"parallel": os.cpu_count() or 1},
    },
)
