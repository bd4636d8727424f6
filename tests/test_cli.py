"""The ``onehop`` command line edge."""

from __future__ import annotations

import subprocess
import sys

from onehop import __version__


def test_version_prints_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "onehop", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"onehop {__version__}"


def test_no_command_prints_help_and_fails() -> None:
    out = subprocess.run([sys.executable, "-m", "onehop"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "usage: onehop" in out.stderr
