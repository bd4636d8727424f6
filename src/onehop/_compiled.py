"""Which build is running: the modules mypyc compiles, and whether they are compiled.

``setup.py`` compiles :data:`COMPILED_MODULES` when ``ONEHOP_COMPILE=1`` (README,
"Builds"); everything else, and everything in a pure install, runs as plain Python
from the same source. :func:`module_kinds` asks the import system what each module
really is (an extension module or a source file) without importing it, so the
answer cannot be a stale flag: a compiled build whose modules are ``.py`` files
reports itself pure. ``build_mode`` is what the build was asked for (written by
``setup.py`` into the built package; "source" when running from a source tree).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
from typing import Final

#: The hot modules: the core, the serving endpoint, the ASGI request cycle, the proxy
#: exchange and hop rules, the client connection and pool. ``onehop.errors`` stays
#: interpreted: compiled, its per-class ``status_hint`` defaults were lost.
COMPILED_MODULES: Final = (
    "onehop.core.connection",
    "onehop.core.events",
    "onehop.core.framing",
    "onehop.core.head",
    "onehop.core.headers",
    "onehop.core.native",
    "onehop.core.persistence",
    "onehop.core.reader",
    "onehop.core.state",
    "onehop.core.syntax",
    "onehop.core.target",
    "onehop.core.writer",
    "onehop._aio.dates",
    "onehop._aio.endpoint",
    "onehop._aio.flow",
    "onehop._aio.handlers",
    "onehop._aio.responding",
    "onehop._aio.serving",
    "onehop._aio.timer",
    "onehop._aio.tracing",
    "onehop.server.asgi",
    "onehop.server.heads",
    "onehop.server.proxyheaders",
    "onehop.proxy.downstream",
    "onehop.proxy.exchange",
    "onehop.proxy.hop",
    "onehop.proxy.inbound",
    "onehop.proxy.proxy",
    "onehop.proxy.relay",
    "onehop.proxy.routing",
    "onehop.proxy.upstreams",
    "onehop.client.connection",
    "onehop.client.dialing",
    "onehop.client.pool",
    "onehop.client.reading",
    "onehop.client.waiters",
    "onehop.client.writing",
)


def _build_mode() -> str:
    try:
        written = importlib.import_module("onehop._build_mode")  # (written by setup.py)
    except ImportError:
        return "source"
    return str(written.MODE)


#: What the build was asked for: "compiled", "pure", or "source" (a source tree).
build_mode: Final = _build_mode()


def module_kinds() -> dict[str, bool]:
    """Each of :data:`COMPILED_MODULES` mapped to whether it is an extension module."""
    kinds = {}
    for name in COMPILED_MODULES:
        spec = importlib.util.find_spec(name)
        kinds[name] = spec is not None and isinstance(
            spec.loader, importlib.machinery.ExtensionFileLoader)
    return kinds


def is_compiled() -> bool:
    """Whether every hot module is compiled (a partly compiled tree counts as pure)."""
    return all(module_kinds().values())


def describe() -> str:
    """Which build runs, for ``onehop --version`` ("pure Python", "compiled: mypyc, N
    modules"); a compiled build whose modules are not all extension modules says so."""
    kinds = module_kinds()
    n = sum(kinds.values())
    if n == len(kinds):
        text = f"compiled: mypyc, {n} modules"
    elif n == 0:
        text = "pure Python"
    else:
        text = f"partly compiled: {n} of {len(kinds)} modules, a broken build"
    if build_mode == "compiled" and n != len(kinds):
        text += "; built as compiled"
    return text
