"""Running a server: one process, or supervised workers sharing one socket."""

from __future__ import annotations

import dataclasses
import logging
import socket
from typing import Any

from onehop._aio.sockets import bind_socket, describe
from onehop._aio.workers import run_workers
from onehop.server.config import ASGIApp, Config
from onehop.server.server import Server

logger = logging.getLogger("onehop.error")

#: Grace period the parent allows a worker when timeout_graceful_shutdown is unset.
DEFAULT_WORKER_GRACE = 30.0


def _worker(config: Config, log_level: int, sock: socket.socket) -> None:
    logging.basicConfig(level=log_level, format="%(levelname)s: [%(process)d] %(message)s")
    Server(config).run([sock])


def run(config: Config) -> int:
    """Serve *config* until SIGINT/SIGTERM (workers when ``config.workers > 1``); return an
    exit status: 0, 1 when workers crash-looped, 3 when the server could not start."""
    if config.workers > 1:
        sock = bind_socket(config.host, config.port, uds=config.uds, fd=config.fd,
                           backlog=config.backlog, inheritable=True)
        logger.info("onehop serving on %s with %d workers", describe(sock), config.workers)
        child = dataclasses.replace(config, workers=1, install_signal_handlers=True)
        level = logging.getLogger().getEffectiveLevel()
        grace = config.timeout_graceful_shutdown or DEFAULT_WORKER_GRACE
        return run_workers(config.workers, _worker, (child, level), sock, grace=grace)
    server = Server(config)
    server.run()
    return 0 if server.started else 3


def serve(app: ASGIApp | str, **kwargs: Any) -> None:
    """Run *app* until SIGINT/SIGTERM; keyword arguments are :class:`Config` fields.

    With ``workers > 1`` the app must be an import string (workers are spawned).
    """
    run(Config(app=app, **kwargs))
