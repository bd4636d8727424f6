"""Running a server: one process, supervised workers sharing one socket, or a reloader.

Workers and the reloaded process are spawned: each gets the :class:`Config` (plain
data) and the bound socket, configures logging itself and builds its own TLS
context (an ``SSLContext`` cannot be pickled).
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from typing import Any

from onehop._aio import logs
from onehop._aio.envfile import load as load_env_file
from onehop._aio.reload import run_reloader
from onehop._aio.sockets import bind_socket, describe
from onehop._aio.workers import run_workers
from onehop.server.config import ASGIApp, Config
from onehop.server.server import Server

logger = logging.getLogger("onehop.error")

#: Grace period the parent allows a worker when timeout_graceful_shutdown is unset.
DEFAULT_WORKER_GRACE = 30.0


def _worker(config: Config, sock: socket.socket) -> None:
    """One spawned process (a worker, or the reloader's): configure logging, then serve."""
    logs.configure(config.log_settings())
    Server(config).run([sock])


def run(config: Config) -> int:
    """Serve *config* until SIGINT/SIGTERM (a reloader with ``config.reload``, workers when
    ``config.workers > 1``); return an exit status: 0, 1 when workers crash-looped, 3
    when the server could not start.

    The caller configures logging (the command line does, and :func:`serve`).

    Raises:
        OSError: the address cannot be bound.
        EnvFileError: ``env_file`` cannot be read or parsed.
        ReloadUnavailable: ``reload`` without watchfiles.
    """
    if config.env_file is not None:
        load_env_file(config.env_file)
    scheme = "https" if config.is_ssl else "http"
    if config.reload:
        if not isinstance(config.app, str):
            logger.warning("reload needs the app as an import string ('module:app'); "
                           "serving without reload")
        else:
            if config.workers > 1:
                logger.warning('"workers" is ignored when reloading is enabled.')
            sock = bind_socket(config.host, config.port, uds=config.uds, fd=config.fd,
                               backlog=config.backlog, inheritable=True)
            logger.info("onehop serving on %s (Press CTRL+C to quit)", describe(sock, scheme))
            child = dataclasses.replace(config, workers=1, reload=False,
                                        install_signal_handlers=True)
            grace = config.timeout_graceful_shutdown or DEFAULT_WORKER_GRACE
            return run_reloader(_worker, (child,), sock, config.reload_settings(), grace=grace)
    if config.workers > 1:
        sock = bind_socket(config.host, config.port, uds=config.uds, fd=config.fd,
                           backlog=config.backlog, inheritable=True)
        logger.info("onehop serving on %s with %d workers", describe(sock, scheme),
                    config.workers)
        child = dataclasses.replace(config, workers=1, install_signal_handlers=True)
        grace = config.timeout_graceful_shutdown or DEFAULT_WORKER_GRACE
        return run_workers(config.workers, _worker, (child,), sock, grace=grace)
    server = Server(config)
    server.run()
    return 0 if server.started else 3


def serve(app: ASGIApp | str, **kwargs: Any) -> None:
    """Run *app* until SIGINT/SIGTERM; keyword arguments are :class:`Config` fields.

    Configures logging as the command line does (``log_config``, ``log_level``,
    ``use_colors``), as ``uvicorn.run`` does. With ``workers > 1`` or ``reload`` the
    app must be an import string (workers are spawned).
    """
    config = Config(app=app, **kwargs)
    logs.configure(config.log_settings())
    run(config)
