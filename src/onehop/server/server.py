"""Listening, lifespan and graceful shutdown for the origin server.

:class:`Server` binds, runs the app's lifespan, serves until asked to exit,
then shuts down gracefully: stop accepting, close idle keep-alive connections
at once, let in-flight requests finish (their responses carry ``close``, RFC
9112 §9.6) for up to ``timeout_graceful_shutdown`` seconds, then cut the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from typing import TYPE_CHECKING, Any

from onehop._aio import new_event_loop
from onehop.server.config import AppLoadError, ASGIApp, Config
from onehop.server.lifespan import Lifespan
from onehop.server.protocol import HttpProtocol, RequestCycle, _HeadCache

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger("onehop.server")


class ServerState:
    """What all connections of one server share; touched only from the server's loop."""

    def __init__(self, on_exit: Any) -> None:
        self.connections: set[HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.total_requests = 0
        self.shutting_down = False
        self.lifespan_state: dict[str, Any] = {}
        self.head_cache = _HeadCache()
        #: Cycles whose response head waits to be coalesced with their body (protocol.py).
        self.pending_heads: list[RequestCycle] = []
        self._on_exit = on_exit

    def live_tasks(self) -> set[asyncio.Task[None]]:
        """``tasks`` without any that ended unseen (cancelled before their first step)."""
        done = [task for task in self.tasks if task.done()]
        self.tasks.difference_update(done)
        return self.tasks

    def request_exit(self) -> None:
        """Ask the server to stop (the global request limit was reached)."""
        self._on_exit()


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
        self.state = ServerState(self._limit_reached)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_event: asyncio.Event | None = None
        self._started_thread_event = threading.Event()

    def _limit_reached(self) -> None:
        limit = self.config.limit_max_requests
        if limit is not None and self.state.total_requests >= limit:
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
        try:
            app = config.load_app()
        except AppLoadError as exc:
            logger.error("%s", exc)
            return
        lifespan = Lifespan(app, config.lifespan)
        self.state.lifespan_state = lifespan.state
        if not await lifespan.startup():
            return
        try:
            await self._start(app, sockets)
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

    async def _start(self, app: ASGIApp, sockets: Sequence[socket.socket] | None) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        state = self.state

        def factory() -> HttpProtocol:
            return HttpProtocol(config, state, app)

        socks = list(sockets or config.sockets or [])
        if socks:
            for sock in socks:
                if sock.family == socket.AF_UNIX:
                    srv = await loop.create_unix_server(factory, sock=sock, backlog=config.backlog)
                else:
                    srv = await loop.create_server(factory, sock=sock, backlog=config.backlog)
                self.servers.append(srv)
        elif config.fd is not None:
            sock = socket.fromfd(config.fd, socket.AF_UNIX, socket.SOCK_STREAM)
            if sock.family != socket.AF_UNIX:
                sock = socket.fromfd(config.fd, sock.family, socket.SOCK_STREAM)
            self.servers.append(await loop.create_server(factory, sock=sock,
                                                         backlog=config.backlog))
        elif config.uds is not None:
            if os.path.exists(config.uds):
                os.unlink(config.uds)
            self.servers.append(await loop.create_unix_server(factory, path=config.uds,
                                                              backlog=config.backlog))
        else:
            self.servers.append(await loop.create_server(
                factory, host=config.host, port=config.port, backlog=config.backlog,
                reuse_address=True,
            ))
        for sock in self.sockets:
            logger.info("onehop serving on %s", sock.getsockname())

    async def _shutdown(self) -> None:
        state = self.state
        state.shutting_down = True
        for srv in self.servers:
            srv.close()
        for conn in list(state.connections):
            conn.shutdown()
        grace = self.config.timeout_graceful_shutdown
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + grace
        while (state.connections or state.live_tasks()) and not self.force_exit:
            if deadline is not None and loop.time() >= deadline:
                logger.warning("Graceful shutdown timed out; cutting %d connection(s)",
                               len(state.connections))
                break
            await asyncio.sleep(0.02)
        for conn in list(state.connections):
            conn.abort()
        for task in list(state.tasks):
            task.cancel()
        if state.live_tasks():
            await asyncio.wait(list(state.tasks), timeout=1.0)
        for srv in self.servers:
            await srv.wait_closed()

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


def serve(app: ASGIApp | str, **kwargs: Any) -> None:
    """Run *app* until SIGINT/SIGTERM; keyword arguments are :class:`Config` fields.

    With ``workers > 1`` the app must be an import string (workers are spawned).
    """
    config = Config(app=app, **kwargs)
    if config.workers > 1:
        from onehop.server.workers import run_workers

        run_workers(config)
        return
    Server(config).run()
