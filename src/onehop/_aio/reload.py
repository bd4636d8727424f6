"""``--reload``: one supervised worker, restarted when watched files change (watchfiles).

The supervisor binds the socket once (so the address never goes away between
restarts, and a client's connection is refused by nobody), spawns one worker
(``spawn``: no state survives a reload) and asks ``watchfiles`` (what uvicorn
uses; the ``onehop[reload]`` extra) for changes. A change to a file that an
include pattern matches and no exclude pattern does stops the worker gracefully
and starts a new one. A worker that dies (say, a syntax error in the app) stays
down until the next change. SIGINT/SIGTERM stop the worker, then the supervisor.

The patterns follow uvicorn: includes ``*.py`` by default, excludes ``.*``,
``.py[cod]``, ``.sw.*`` and ``~*``; a pattern given as an include is removed from the
default excludes and the other way round; an exclude naming a directory excludes
everything under it. Directories of tools (``.git``, ``__pycache__``, ``.venv``...)
are never watched.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final

from onehop._aio.workers import stop_process

logger: Final = logging.getLogger("onehop.error")

DEFAULT_INCLUDES: Final = ("*.py",)
DEFAULT_EXCLUDES: Final = (".*", ".py[cod]", ".sw.*", "~*")
#: Directory names never watched (tools' caches and metadata; watchfiles' own list).
IGNORED_DIRS: Final = frozenset({
    "__pycache__", ".git", ".hg", ".svn", ".tox", ".venv", ".idea", "node_modules",
    ".mypy_cache", ".pytest_cache", ".hypothesis", ".ruff_cache",
})
#: How often (ms) the watcher returns without changes, to look at stop and the worker.
_POLL_MS: Final = 500
#: What ``--reload`` prints when watchfiles is missing.
MISSING_MESSAGE: Final = "--reload needs watchfiles: pip install 'onehop[reload]'"


class ReloadUnavailable(RuntimeError):
    """watchfiles is not installed (the message says how to install it)."""


@dataclass(frozen=True)
class ReloadSettings:
    """What to watch (``--reload-dir``, ``--reload-include``, ``--reload-exclude``) and
    how long a burst of changes must be quiet before the restart (``--reload-delay``)."""

    dirs: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    delay: float = 0.25

    def watched_dirs(self) -> list[Path]:
        """The directories to watch, absolute (the working directory by default)."""
        dirs = [Path(d).resolve() for d in self.dirs] or [Path.cwd()]
        out: list[Path] = []
        for d in dirs:  # (a directory under another watched one is watched already)
            if d not in out and not any(p in d.parents for p in dirs if p != d):
                out.append(d)
        return out

    def file_filter(self) -> FileFilter:
        """The include/exclude rule for changed paths."""
        return FileFilter(self.includes, self.excludes)


@dataclass
class FileFilter:
    """Whether a changed path should trigger a reload (see the module docstring)."""

    includes: Sequence[str] = ()
    excludes: Sequence[str] = ()
    _includes: list[str] = field(init=False)
    _excludes: list[str] = field(init=False)
    _exclude_dirs: list[Path] = field(init=False)

    def __post_init__(self) -> None:
        includes = [*DEFAULT_INCLUDES, *(p for p in self.includes if p not in DEFAULT_INCLUDES)]
        excludes = [p for p in DEFAULT_EXCLUDES if p not in self.includes]
        excludes += [p for p in self.excludes if p not in excludes]
        includes = [p for p in includes if p not in self.excludes]
        self._includes = includes
        self._exclude_dirs = [Path(p).resolve() for p in excludes if Path(p).is_dir()]
        self._excludes = [p for p in excludes if not Path(p).is_dir()]

    def __call__(self, path: str | Path) -> bool:
        p = Path(path)
        if any(part in IGNORED_DIRS for part in p.parts[:-1]):
            return False
        if not any(p.match(pattern) for pattern in self._includes):
            return False
        if any(d in p.parents for d in self._exclude_dirs):
            return False
        return not any(p.match(pattern) for pattern in self._excludes)


def _watchfiles() -> Any:
    try:
        import watchfiles
    except ImportError:
        raise ReloadUnavailable(MISSING_MESSAGE) from None
    return watchfiles


def check_available() -> None:
    """Raise :class:`ReloadUnavailable` unless watchfiles can be imported."""
    _watchfiles()


def _names(paths: Iterable[str], roots: Sequence[Path]) -> str:
    out = []
    for path in sorted(set(paths)):
        p = Path(path)
        for root in roots:
            if root in p.parents:
                p = p.relative_to(root)
                break
        out.append(f"'{p}'")
    return ", ".join(out)


def run_reloader(
    target: Callable[..., object],
    args: tuple[Any, ...],
    sock: socket.socket,
    settings: ReloadSettings,
    *,
    grace: float = 30.0,
) -> int:
    """Run ``target(*args, sock)`` in one spawned process, restarting it whenever a
    watched file changes, until SIGINT/SIGTERM; return 0.

    Raises:
        ReloadUnavailable: watchfiles is not installed.
    """
    watchfiles = _watchfiles()
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()
    sock.set_inheritable(True)
    dirs = settings.watched_dirs()
    accept = settings.file_filter()

    def spawn() -> BaseProcess:
        proc = ctx.Process(target=target, args=(*args, sock), daemon=False)
        proc.start()
        logger.info("Started server process [%s]", proc.pid)
        return proc

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    def watch_filter(change: Any, path: str) -> bool:
        return accept(path)

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    logger.info("Will watch for changes in these directories: %s", [str(d) for d in dirs])
    logger.info("Started reloader process [%d] using WatchFiles", os.getpid())
    proc = spawn()
    try:
        for changes in watchfiles.watch(
            *dirs, watch_filter=watch_filter, stop_event=stop, yield_on_timeout=True,
            rust_timeout=_POLL_MS, step=max(50, int(settings.delay * 1000)),
            raise_interrupt=False,
        ):
            if stop.is_set():
                break
            if not changes:
                continue
            logger.warning("WatchFiles detected changes in %s. Reloading...",
                           _names((path for _, path in changes), dirs))
            stop_process(proc, grace, "server")
            proc = spawn()
    finally:
        logger.info("Stopping reloader process [%d]", os.getpid())
        stop_process(proc, grace, "server")
        for sig, handler in old.items():
            signal.signal(sig, handler)
        sock.close()
    return 0
