"""Supervised worker processes sharing one listening socket (``--workers N``).

One runner for ``onehop serve`` and ``onehop proxy``. The parent binds once
and hands the socket to each worker, started with ``spawn`` (no event-loop
state is inherited); a worker that dies is restarted; more than
``MAX_RESTARTS`` restarts within ``RESTART_WINDOW`` seconds is a crash loop and
the parent gives up; SIGINT/SIGTERM in the parent are forwarded as SIGTERM so
every worker shuts down gracefully, then the parent waits for them (each gets
its grace period plus a second) and kills what is left.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any, Final

logger: Final = logging.getLogger("onehop.error")

#: How often the supervisor looks for dead workers, in seconds.
CHECK_INTERVAL: Final = 0.5
#: More restarts than this within RESTART_WINDOW seconds is a crash loop: give up.
MAX_RESTARTS: Final = 10
RESTART_WINDOW: Final = 10.0


def run_workers(
    count: int,
    target: Callable[..., object],
    args: tuple[Any, ...],
    sock: socket.socket,
    *,
    grace: float = 30.0,
    label: str = "worker",
) -> int:
    """Run *count* processes of ``target(*args, sock)`` until SIGINT/SIGTERM; return an
    exit status (1 when the workers crash-looped).

    *target* and *args* must be picklable (a module-level function and plain data).
    """
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()
    sock.set_inheritable(True)

    def spawn() -> BaseProcess:
        proc = ctx.Process(target=target, args=(*args, sock), daemon=False)
        proc.start()
        logger.info("Started %s process [%s]", label, proc.pid)
        return proc

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    logger.info("Started parent process [%d] with %d %s processes", os.getpid(), count, label)
    procs = [spawn() for _ in range(count)]
    restarts: list[float] = []
    status = 0
    try:
        while not stop.wait(CHECK_INTERVAL):
            for i, proc in enumerate(procs):
                if proc.is_alive():
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < RESTART_WINDOW] + [now]
                if len(restarts) > MAX_RESTARTS:
                    logger.error("%s processes keep dying (%d restarts in %g s); giving up",
                                 label.capitalize(), len(restarts) - 1, RESTART_WINDOW)
                    stop.set()
                    status = 1
                    break
                logger.warning("%s process [%s] exited with %s; restarting",
                               label.capitalize(), proc.pid, proc.exitcode)
                procs[i] = spawn()
    finally:
        logger.info("Stopping parent process [%d]", os.getpid())
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            stop_process(proc, grace, label, signalled=True)
        for sig, handler in old.items():
            signal.signal(sig, handler)
        sock.close()
    return status


def stop_process(proc: BaseProcess, grace: float, label: str = "worker", *,
                 signalled: bool = False) -> None:
    """Stop *proc* gracefully: SIGTERM (unless *signalled* already), wait its grace period
    plus a second, then kill it; log how it ended (one line)."""
    if not signalled and proc.is_alive() and proc.pid is not None:
        os.kill(proc.pid, signal.SIGTERM)
    proc.join(grace + 1.0)
    if proc.is_alive():
        logger.warning("%s process [%s] did not stop in time; killing it",
                       label.capitalize(), proc.pid)
        proc.kill()
        proc.join(1)
    else:
        logger.info("Stopped %s process [%s]", label, proc.pid)
