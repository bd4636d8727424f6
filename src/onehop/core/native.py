"""Whether the core runs interpreted or compiled (mypyc): one flag for the pure fast paths.

Compiled, a call between core functions costs next to nothing, so each rule is called in
its own function. Interpreted, a call is a Python frame, a measurable cost on the hot
path; there a few callers keep a rule's commonest case inline (``if INTERPRETED:``) and
build trusted instances with ``object.__new__``, which a compiled class refuses. Each
such fast path names the function it copies, and a test checks that they agree
(``tests/core/test_body_writer.py``, ``tests/core/test_framing.py``,
``tests/test_builds.py``). This module is compiled with the core, so the flag tells the
truth about the core's modules.
"""

from __future__ import annotations

from typing import Final


class _Probe:
    """A class of this module: native (with ``__mypyc_attrs__``) when it is compiled."""


#: The core runs as plain Python (the pure build, or a source tree).
INTERPRETED: Final = not hasattr(_Probe, "__mypyc_attrs__")
#: Builds an instance without ``__init__`` (interpreted only: see :data:`INTERPRETED`).
new_instance: Final = object.__new__
