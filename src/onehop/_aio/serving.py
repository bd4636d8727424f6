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
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from onehop.core import ConnectionInfo, Limits

logger: Final = logging.getLogger("onehop.error")

#: ``http`` values: which protocols a listener speaks. ``auto``: HTTP/1.x, and HTTP/2 by
#: prior knowledge on cleartext (the client preface as the first bytes) or by ALPN ``h2``
#: on TLS; ``h11``: HTTP/1.x only (uvicorn's name; ``httptools`` means the same here);
#: ``h2``: HTTP/2 only (HTTP/1.x requests get 505).
HTTP_CHOICES: Final = ("auto", "h11", "httptools", "h2")


@dataclass(frozen=True)
class Http2Settings:
    """What an HTTP/2 connection announces in its SETTINGS (RFC 9113 §6.5.2).

    Attributes:
        max_concurrent_streams: streams a client may have open at once (more are a
            PROTOCOL_ERROR, RFC 9113 §5.1.2).
        max_header_list_size: the largest field section accepted, in RFC 9113 §6.5.2's
            measure (names, values and 32 bytes per field).
        initial_window_size: the flow-control window of each stream for request content
            (RFC 9113 §6.9.2): how much one upload may send before we take it.
    """

    max_concurrent_streams: int = 100
    max_header_list_size: int = 64 * 1024
    initial_window_size: int = 65535

    def __post_init__(self) -> None:
        if self.max_concurrent_streams < 1:
            raise ValueError("http2 max_concurrent_streams must be >= 1")
        if self.max_header_list_size < 1024:
            raise ValueError("http2 max_header_list_size must be >= 1024")
        if not 1 <= self.initial_window_size <= 2**31 - 1:
            raise ValueError("http2 initial_window_size must be between 1 and 2^31-1 "
                             "(RFC 9113 §6.5.2)")

    def __reduce__(self) -> tuple[type[Http2Settings], tuple[int, int, int]]:
        """Pickle by the constructor (``--workers`` sends the config to each worker), as
        :class:`~onehop.core.Limits` does: a compiled frozen dataclass cannot be rebuilt
        by setting its fields one by one."""
        return (Http2Settings, (self.max_concurrent_streams, self.max_header_list_size,
                                self.initial_window_size))


def http2_available() -> bool:
    """Whether the ``h2`` package is installed (without importing it); looked up once."""
    global _h2_installed
    if _h2_installed is None:
        _h2_installed = importlib.util.find_spec("h2") is not None
    return _h2_installed


_h2_installed: bool | None = None
_warned: list[bool] = []  # (the missing-h2 warning, once per process)


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
        http: the protocols spoken (:data:`HTTP_CHOICES`); ``auto`` serves HTTP/2 on
            the same port when the ``h2`` package is there.
        http2: the HTTP/2 SETTINGS (:class:`Http2Settings`).
        extended_connect: announce SETTINGS_ENABLE_CONNECT_PROTOCOL on HTTP/2 and take
            extended CONNECT requests (RFC 8441): set where a handler can answer a
            WebSocket over a stream (the server with ``ws`` on; the proxy, which
            forwards it as an HTTP/1.1 upgrade). Off, a ``:protocol`` is a stream error.
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
    http: str = "auto"
    http2: Http2Settings = field(default_factory=Http2Settings)
    extended_connect: bool = False
    #: Whether HTTP/2 is served (``auto`` with h2 installed, or ``h2``): set from ``http``.
    speaks_http2: bool = field(init=False, default=False)

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
        if self.http not in HTTP_CHOICES:
            raise ValueError(f"http must be one of {HTTP_CHOICES}, got {self.http!r}")
        if self.http == "h2" and not http2_available():
            raise ValueError("http h2: HTTP/2 needs the h2 package: pip install 'onehop[h2]'")
        self.speaks_http2 = self.http == "h2" or (self.http == "auto" and http2_available())
        if self.http == "auto" and not self.speaks_http2 and not _warned:
            _warned.append(True)
            logger.warning("HTTP/2 is off: the h2 package is not installed "
                           "(pip install 'onehop[h2]')")

    @property
    def speaks_http1(self) -> bool:
        """Whether HTTP/1.x requests are served (all but ``h2``)."""
        return self.http != "h2"


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
