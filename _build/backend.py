"""The PEP 517 backend: setuptools, plus a pinned mypy only when a compiled build is asked.

``ONEHOP_COMPILE=1`` asks for the mypyc build (README, "Builds"); without it the
build needs nothing but setuptools, so ``pip install .`` downloads nothing extra and
never needs a C compiler. The pin keeps the generated C the one the tests ran on.
"""

from __future__ import annotations

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the hooks this module does not change)

#: The mypy (and so mypyc) a compiled build uses; the tests run against this one.
MYPY_PIN = "mypy==2.4.1"


def compile_requested() -> bool:
    """Whether ``ONEHOP_COMPILE`` asks for the compiled build (1/true/yes)."""
    return os.environ.get("ONEHOP_COMPILE", "").strip().lower() in ("1", "true", "yes")


def _extra() -> list[str]:
    return [MYPY_PIN] if compile_requested() else []


def get_requires_for_build_wheel(config_settings=None):  # type: ignore[no-untyped-def]
    return _setuptools.get_requires_for_build_wheel(config_settings) + _extra()


def get_requires_for_build_editable(config_settings=None):  # type: ignore[no-untyped-def]
    return _setuptools.get_requires_for_build_editable(config_settings) + _extra()
