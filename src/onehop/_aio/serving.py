"""What every server-role connection of one listener shares: settings, books and shutdown.

:class:`ServingConfig` holds the connection rules the serving endpoint
(:mod:`onehop._aio.endpoint`) applies for the ASGI server and the proxy alike:
timeouts (idle keep-alive, header, body, lingering close), persistence
settings, limits, the overload gate. :class:`ServingState` holds the
connections and the counters of one server (or proxy) and runs its graceful
shutdown: stop accepting, close idle connections at once, let in-flight
exchanges finish with ``close`` on their responses (RFC 9112 §9.6) up to a
grace period, then cut the rest.

Everything here is touched only from the server's event loop: no locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from onehop.core import ConnectionInfo, Limits

logger: Final = logging.getLogger("onehop.error")

#: ``keep_alive_header`` values: when to announce ``Keep-Alive: timeout=N, max=M``.
KEEP_ALIVE_HEADER_CHOICES: Final = ("never", "http10", "always")
#: Shared ``Keep-Alive`` connection parts by (timeout, requests left); cleared past this.
_KEEP_ALIVE_HINTS: Final[dict[tuple[int, int], ConnectionInfo]] = {}
_KEEP_ALIVE_HINTS_SIZE: Final = 4096


@dataclass
class ServingConfig:
    """The connection rules of one listener (defaults follow uvicorn's where it has one).

    Attributes:
        limits: size limits for received heads and bodies (the core's).
        keep_alive: persist connections at all; False answers every request with ``close``.
        http10_keep_alive: honour ``Connection: keep-alive`` from HTTP/1.0 clients.
        intermediary: we are a proxy: an HTTP/1.0 client is never kept alive (RFC 9112
            §9.3, RFC 7230 §6.3).
        keep_alive_header: when to announce ``Keep-Alive: timeout=N, max=M`` (RFC 7230
            §A.1.2), taken from the real idle timer and request limit.
        idle_timeout: seconds an idle keep-alive connection stays open.
        header_timeout: seconds a started request head may take (answered 408); armed
            once per head, so a client dripping bytes cannot keep a connection forever.
        body_timeout: seconds to wait for the next piece of a request body the handler is
            reading (408 before the response, else the connection is cut); None: no limit.
        linger_timeout: seconds to read and discard a client's input after closing our
            side while it may still be sending (RFC 9112 §9.6).
        max_requests_per_connection: the last response on a connection carries ``close``.
        limit_concurrency: answer 503 (with ``close``) past this many connections or
            requests in flight.
        read_high_water: unparsed bytes (pipelined requests) buffered before reading pauses.
        half_close_abandons: a client that shuts its sending side while its answer is
            awaited has given up on it (the proxy's rule, nginx's 499); False keeps the
            write side open and answers (the origin server's).
    """

    limits: Limits = field(default_factory=Limits)
    keep_alive: bool = True
    http10_keep_alive: bool = True
    intermediary: bool = False
    keep_alive_header: str = "http10"
    idle_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float | None = 30.0
    linger_timeout: float = 2.0
    max_requests_per_connection: int | None = 1000
    limit_concurrency: int | None = None
    read_high_water: int = 64 * 1024
    half_close_abandons: bool = False

    def keep_alive_hint(self, requests: int) -> ConnectionInfo:
        """A response's connection part announcing ``Keep-Alive: timeout=N, max=M`` (RFC
        7230 §A.1.2) after *requests* on the connection, from the real idle timer and
        request limit. Shared per (timeout, requests left), so the core writes each once:
        the hint changes on every response of a connection, but every connection goes
        through the same few values."""
        timeout = int(self.idle_timeout)
        limit = self.max_requests_per_connection
        left = -1 if limit is None else limit - requests
        info = _KEEP_ALIVE_HINTS.get((timeout, left))
        if info is None:
            if len(_KEEP_ALIVE_HINTS) >= _KEEP_ALIVE_HINTS_SIZE:
                _KEEP_ALIVE_HINTS.clear()
            value = b"timeout=%d" % timeout if left < 0 else b"timeout=%d, max=%d" % (
                timeout, left)
            info = _KEEP_ALIVE_HINTS[timeout, left] = ConnectionInfo.from_parsed(
                frozenset(), [(b"keep-alive", b"Keep-Alive", value)])
        return info

    def __post_init__(self) -> None:
        if self.keep_alive_header not in KEEP_ALIVE_HEADER_CHOICES:
            raise ValueError(f"keep_alive_header must be one of {KEEP_ALIVE_HEADER_CHOICES}")
        if self.max_requests_per_connection is not None and self.max_requests_per_connection < 1:
            raise ValueError("max_requests_per_connection must be >= 1")
        if self.body_timeout is not None and self.body_timeout <= 0:
            raise ValueError("body_timeout must be > 0 (None disables it)")
        for name in ("idle_timeout", "header_timeout", "linger_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.limit_concurrency is not None and self.limit_concurrency < 1:
            raise ValueError("limit_concurrency must be >= 1")


class Served(Protocol):
    """What the books need of a connection (a ``ServerEndpoint``): ending it."""

    def shutdown(self) -> None: ...

    def abort(self) -> None: ...


class ServingState:
    """The connections and counters of one listener (or a set of listeners sharing rules).

    ``connections``: every open endpoint. ``active``: endpoints answering a request
    now (for the overload gate). ``total_requests``: requests started so far; when
    ``max_requests`` is reached, ``on_exhausted`` is called once (the server stops).
    """

    def __init__(self, config: ServingConfig, *, max_requests: int | None = None,
                 on_exhausted: Callable[[], object] | None = None) -> None:
        self.config = config
        self.connections: set[Served] = set()
        self.active = 0
        self.total_requests = 0
        self.shutting_down = False
        self.max_requests = max_requests
        self._on_exhausted = on_exhausted

    def admit(self) -> bool:
        """Count a request that starts; False when it is over ``limit_concurrency``
        (more connections or requests in flight than the limit: answered 503).

        Past ``max_requests`` the owner is told to stop (once).
        """
        self.total_requests += 1
        self.active += 1
        limit = self.max_requests
        if limit is not None and self.total_requests == limit and self._on_exhausted is not None:
            self._on_exhausted()
        limit = self.config.limit_concurrency
        return limit is None or (len(self.connections) <= limit and self.active <= limit)

    def begin_shutdown(self) -> None:
        """Stop taking requests: idle connections close now; busy ones after their
        response, which carries ``close`` (RFC 9112 §9.6)."""
        self.shutting_down = True
        for endpoint in list(self.connections):
            endpoint.shutdown()

    async def drain(self, grace: float | None, busy: Callable[[], bool] = lambda: False,
                    force: Callable[[], bool] = lambda: False) -> None:
        """Wait until every connection has closed (and *busy* is false), at most *grace*
        seconds (None: no limit) or until *force*; then cut what is left."""
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + grace
        while (self.connections or busy()) and not force():
            if deadline is not None and loop.time() >= deadline:
                logger.warning("Graceful shutdown timed out after %g s; cutting %d "
                               "connection(s)", grace, len(self.connections))
                break
            await asyncio.sleep(0.02)
        for endpoint in list(self.connections):
            endpoint.abort()
