"""``--workers N``: N processes serving one listening socket, supervised by the parent.

The parent binds once and hands the socket to each worker (spawned, so no
loop state is inherited); a worker that dies is restarted; SIGINT/SIGTERM in
the parent are forwarded as SIGTERM so every worker shuts down gracefully.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

from onehop.server.config import Config

logger = logging.getLogger("onehop.server")

#: How often the supervisor looks for dead workers, in seconds.
CHECK_INTERVAL = 0.5
#: More restarts than this within RESTART_WINDOW seconds is a crash loop: give up.
MAX_RESTARTS = 10
RESTART_WINDOW = 10.0


def bind_socket(config: Config) -> socket.socket:
    """Bind the listening socket the workers share (TCP, Unix or an inherited fd)."""
    if config.fd is not None:
        return socket.socket(fileno=config.fd)
    if config.uds is not None:
        if os.path.exists(config.uds):
            os.unlink(config.uds)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(config.uds)
    else:
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
    sock.listen(config.backlog)
    sock.set_inheritable(True)
    return sock


def _worker(config: Config, sock: socket.socket, log_level: int) -> None:
    logging.basicConfig(level=log_level, format="%(levelname)s: [%(process)d] %(message)s")
    from onehop.server.server import Server

    Server(config).run([sock])


def run_workers(config: Config) -> int:
    """Run ``config.workers`` supervised workers until SIGINT/SIGTERM; return an exit status
    (1 when workers crash-looped)."""
    sock = bind_socket(config)
    ctx = multiprocessing.get_context("spawn")
    child_config = dataclasses.replace(config, workers=1, install_signal_handlers=True)
    level = logging.getLogger().getEffectiveLevel()
    stop = threading.Event()

    def spawn() -> BaseProcess:
        proc = ctx.Process(target=_worker, args=(child_config, sock, level), daemon=False)
        proc.start()
        return proc

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs = [spawn() for _ in range(config.workers)]
    logger.info("Started %d workers on %s", len(procs), sock.getsockname())
    restarts: list[float] = []
    status = 0
    try:
        while not stop.wait(CHECK_INTERVAL):
            for i, proc in enumerate(procs):
                if not proc.is_alive():
                    now = time.monotonic()
                    restarts = [t for t in restarts if now - t < RESTART_WINDOW] + [now]
                    if len(restarts) > MAX_RESTARTS:
                        logger.error("Workers keep dying; giving up")
                        stop.set()
                        status = 1
                        break
                    logger.warning("Worker %s exited with %s; restarting", proc.pid,
                                   proc.exitcode)
                    procs[i] = spawn()
    finally:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        grace = (config.timeout_graceful_shutdown or 30.0) + 1.0
        for proc in procs:
            proc.join(grace)
            if proc.is_alive():
                proc.kill()
                proc.join(1)
        for sig, handler in old.items():
            signal.signal(sig, handler)
        sock.close()
    return status
