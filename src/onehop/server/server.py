"""Listening, lifespan and graceful shutdown for the origin server.

:class:`Server` binds, runs the app's lifespan, serves until asked to exit,
then shuts down gracefully (:meth:`~onehop._aio.serving.ServingState.begin_shutdown`):
stop accepting, close idle keep-alive connections at once, let in-flight
requests finish (their responses carry ``close``, RFC 9112 §9.6) for up to
``timeout_graceful_shutdown`` seconds, then cut the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import threading
from typing import TYPE_CHECKING

from onehop._aio import new_event_loop
from onehop._aio.endpoint import ServerEndpoint
from onehop._aio.logs import TRACE
from onehop._aio.serving import ServingState
from onehop._aio.sockets import bind_socket, describe
from onehop._aio.tls import TLSConfigError
from onehop._aio.tracing import endpoint_class
from onehop.server.asgi import AsgiService
from onehop.server.config import AppLoadError, ASGIApp, Config
from onehop.server.lifespan import Lifespan

if TYPE_CHECKING:
    import ssl
    from collections.abc import Sequence

logger = logging.getLogger("onehop.error")


class Server:
    """An embeddable ASGI server: ``await Server(config).serve()``.

    ``started`` is set once listening; ``should_exit`` set from anywhere on the
    loop (or :meth:`stop` from another thread) begins graceful shutdown;
    ``force_exit`` skips the grace period.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = False
        self.should_exit = False
        self.force_exit = False
        self.servers: list[asyncio.AbstractServer] = []
        max_requests = config.limit_max_requests
        if max_requests is not None and config.limit_max_requests_jitter:
            # Drawn per process: workers started together stop at different times.
            max_requests += random.randint(0, config.limit_max_requests_jitter)
        #: Requests this process serves before it stops (``limit_max_requests`` + jitter).
        self.max_requests = max_requests
        self.state = ServingState(config.serving_config(), max_requests=max_requests,
                                  on_exhausted=self._exhausted)
        self.service: AsgiService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_event: asyncio.Event | None = None
        self._started_thread_event = threading.Event()

    def _exhausted(self) -> None:
        logger.info("Maximum request limit of %d exceeded. Terminating process.",
                    self.max_requests or 0)
        self.request_stop()

    def request_stop(self) -> None:
        """Begin graceful shutdown (call on the server's loop)."""
        self.should_exit = True
        if self._exit_event is not None:
            self._exit_event.set()

    def stop(self) -> None:
        """Begin graceful shutdown from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self.request_stop)

    def wait_started(self, timeout: float | None = None) -> bool:
        """Block (another thread) until the server listens; False on timeout."""
        return self._started_thread_event.wait(timeout)

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets (to learn the port bound for port 0)."""
        out: list[socket.socket] = []
        for srv in self.servers:
            out.extend(getattr(srv, "sockets", ()) or ())
        return out

    @property
    def port(self) -> int:
        """The TCP port of the first listening socket."""
        return int(self.sockets[0].getsockname()[1])

    def run(self, sockets: Sequence[socket.socket] | None = None) -> None:
        """Run the server on a new loop of the configured kind until it exits."""
        loop = new_event_loop(self.config.loop)
        try:
            loop.run_until_complete(self.serve(sockets))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def serve(self, sockets: Sequence[socket.socket] | None = None) -> None:
        """Start, serve until asked to exit, then shut down gracefully."""
        self._loop = asyncio.get_running_loop()
        self._exit_event = asyncio.Event()
        if self.should_exit:
            self._exit_event.set()
        config = self.config
        logger.info("Started server process [%d]", os.getpid())
        try:
            app = config.load_app()
        except AppLoadError as exc:
            logger.error("%s", exc)
            return
        tls = config.tls_settings()
        try:
            ssl_context = tls.context() if tls is not None else None
        except TLSConfigError as exc:
            logger.error("%s", exc)
            return
        if tls is not None:
            logger.debug("%s", tls.describe())
        lifespan = Lifespan(app, config.lifespan)
        if not await lifespan.startup():
            return
        try:
            await self._start(app, lifespan, sockets, ssl_context)
        except (OSError, OverflowError) as exc:
            logger.error("cannot listen: %s", exc)
            await lifespan.shutdown()
            raise
        self.started = True
        self._started_thread_event.set()
        self._install_signal_handlers()
        try:
            await self._exit_event.wait()
        finally:
            await self._shutdown()
            await lifespan.shutdown()
            self._remove_signal_handlers()

    async def _start(self, app: ASGIApp, lifespan: Lifespan,
                     sockets: Sequence[socket.socket] | None,
                     ssl_context: ssl.SSLContext | None = None) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        state = self.state
        service = self.service = AsgiService(app, config)
        service.lifespan_state = lifespan.state
        # (TracingEndpoint only at --log-level trace: the plain one pays nothing for it.)
        endpoint: type[ServerEndpoint] = endpoint_class()

        def factory() -> ServerEndpoint:
            return endpoint(state, lambda endpoint: service)

        socks = list(sockets or config.sockets or [])
        if not socks:
            socks = [bind_socket(config.host, config.port, uds=config.uds, fd=config.fd,
                                 backlog=config.backlog)]
        # A TLS handshake must finish within the header timeout: the endpoint's timers
        # start only once it has (a client that never sends a ClientHello is slow-loris).
        handshake = config.header_timeout if ssl_context is not None else None
        for sock in socks:
            if sock.family == socket.AF_UNIX:
                srv = await loop.create_unix_server(factory, sock=sock, backlog=config.backlog,
                                                    ssl=ssl_context,
                                                    ssl_handshake_timeout=handshake)
            else:
                srv = await loop.create_server(factory, sock=sock, backlog=config.backlog,
                                               ssl=ssl_context, ssl_handshake_timeout=handshake)
            self.servers.append(srv)
        logger.debug("Connection rules: %s", state.config)
        for sock in self.sockets:
            logger.info("onehop serving on %s (Press CTRL+C to quit)", self._describe(sock))

    def _describe(self, sock: socket.socket) -> str:
        return describe(sock, "https" if self.config.is_ssl else "http")

    async def _shutdown(self) -> None:
        state = self.state
        names = [self._describe(sock) for sock in self.sockets]
        for srv in self.servers:
            srv.close()
        logger.info("Shutting down: %d connection(s) open", len(state.connections))
        logger.log(TRACE, "Requests served: %d", state.total_requests)
        state.begin_shutdown()
        service = self.service
        await state.drain(
            self.config.timeout_graceful_shutdown,
            busy=lambda: service is not None and bool(service.live_tasks()),
            force=lambda: self.force_exit,
        )
        if service is not None:
            for task in list(service.tasks):
                task.cancel()
            if service.live_tasks():
                await asyncio.wait(list(service.tasks), timeout=1.0)
        for srv in self.servers:
            await srv.wait_closed()
        for name in names:
            logger.info("Stopped listening on %s", name)
        logger.info("Finished server process [%d]", os.getpid())

    def _install_signal_handlers(self) -> None:
        if not self.config.install_signal_handlers:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self.should_exit:
            self.force_exit = True  # a second signal skips the grace period
        self.request_stop()

    def _remove_signal_handlers(self) -> None:
        if not self.config.install_signal_handlers:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
