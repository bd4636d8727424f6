"""The ``onehop`` command line edge."""

from __future__ import annotations

import subprocess
import sys

from onehop import __version__
from onehop._compiled import COMPILED_MODULES


def test_version_prints_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "onehop", "--version"], capture_output=True, text=True, check=True
    )
    compiled = f"compiled: mypyc, {len(COMPILED_MODULES)} modules"
    assert out.stdout.strip() in (f"onehop {__version__} (pure Python)",
                                  f"onehop {__version__} ({compiled})")


def test_no_command_prints_help_and_fails() -> None:
    out = subprocess.run([sys.executable, "-m", "onehop"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "usage: onehop" in out.stderr
