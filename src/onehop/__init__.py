"""onehop: HTTP/1.x connection management done right, for servers, clients and proxies.

``onehop.compiled`` is True when the hot modules run compiled (mypyc), False in the
pure-Python build (README, "Builds"); ``onehop --version`` says the same.
"""

from onehop._version import __version__

__all__ = ["__version__", "compiled"]

compiled: bool  # (computed on first use: see __getattr__)


def __getattr__(name: str) -> object:
    if name == "compiled":
        from onehop._compiled import is_compiled

        value = globals()["compiled"] = is_compiled()
        return value
    raise AttributeError(f"module 'onehop' has no attribute {name!r}")
