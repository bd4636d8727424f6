"""A connection pool per origin, with per-origin and total limits.

Decisions are pure steps over the pool's own bookkeeping (which idle connection
to lend, whether a slot is free, which waiter goes next); I/O (opening a
socket) happens after, outside them, as httpcore does. Everything runs on one
event loop; the bookkeeping is only touched between awaits, so no lock.

- Waiting callers are served in arrival order (FIFO).
- Idle connections are reused newest first (LIFO): the newest is the least
  likely to have been closed by the server.
- An idle connection is not reused once past the client's idle limit or the
  server's ``Keep-Alive: timeout`` minus a margin, or once its socket turned
  readable or hit EOF (RFC 9112 §9.3.1: the server may close an idle
  connection at any time).
- A connection comes back only when ``is_idle`` (RFC 9112 §9.3, §9.6).
- Idle connections past that expiry are also closed without waiting for the
  next request: one timer per pool (not per connection) fires at the earliest
  expiry among the idle connections, closes every idle connection expired by
  then, and re-arms for the next earliest; it is not armed while nothing is
  idle, and is cancelled when the pool closes. So the client does not keep
  sockets the server is about to close (RFC 7230 §A.1.2 ``Keep-Alive: timeout``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from onehop.client.connection import ConnState, HTTPConnection, Origin
from onehop.client.errors import ClientClosed, ConnectError, ConnectTimeout, PoolTimeout


class _Slot:
    """A reservation to open one connection, handed to a waiter."""

    __slots__ = ()


_SLOT: Final = _Slot()
Trace = Callable[[str], None]
#: The idle sweep also closes connections expiring within this many seconds, so
#: connections released close together share one timer firing.
SWEEP_SLACK: Final = 0.05
_INF: Final = float("inf")


class _Waiter:
    __slots__ = ("fresh", "future", "origin")

    def __init__(self, origin: Origin, fresh: bool, future: asyncio.Future[object]) -> None:
        self.origin = origin
        self.fresh = fresh
        self.future = future


class Pool:
    """Connections per origin; lends one to one task at a time.

    Args:
        max_connections: open connections in total (idle, active and opening).
        max_per_origin: open connections per (scheme, host, port).
        idle_timeout: the client's own limit on how long a connection stays idle.
        keep_alive: False makes every request carry ``Connection: close``.
        ssl_context: used for ``https`` origins; by default one made on first use by
            :func:`default_ssl_context` with *verify*.
        verify: for that default context: True (system CAs), a CA file, or False.
        trace: called with a line of text for each connection event (``-v``).
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_per_origin: int = 10,
        idle_timeout: float = 60.0,
        keep_alive: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        verify: bool | str = True,
        trace: Trace | None = None,
    ) -> None:
        if max_connections < 1 or max_per_origin < 1:
            raise ValueError("pool limits must be at least 1")
        self.max_connections = max_connections
        self.max_per_origin = max_per_origin
        self.idle_timeout = idle_timeout
        self.keep_alive = keep_alive
        self._ssl_context = ssl_context
        self._verify = verify
        self._trace = trace
        self._idle: dict[Origin, list[HTTPConnection]] = {}
        self._count: dict[Origin, int] = {}
        self._total = 0
        self._waiters: deque[_Waiter] = deque()
        self._all: set[HTTPConnection] = set()
        self._dispatching = False
        self._again = False
        self._closed = False
        #: The idle sweep's timer and the monotonic time it fires (inf: not armed).
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._sweep_at = _INF
        #: Connections opened so far (for tests and benchmarks).
        self.connections_opened = 0

    # --- inspection ---------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Open connections, including ones being opened."""
        return self._total

    def count(self, origin: Origin) -> int:
        """Open connections to *origin*, including ones being opened."""
        return self._count.get(origin, 0)

    def idle_count(self, origin: Origin | None = None) -> int:
        """Idle connections, for one origin or all."""
        if origin is not None:
            return len(self._idle.get(origin, ()))
        return sum(len(v) for v in self._idle.values())

    @property
    def waiting(self) -> int:
        """Callers waiting for a connection."""
        return sum(1 for w in self._waiters if not w.future.done())

    @property
    def sweep_armed(self) -> bool:
        """Whether the idle sweep's timer is set (for tests)."""
        return self._sweep_handle is not None

    # --- pure steps ---------------------------------------------------------------------------

    def _take_idle(self, origin: Origin) -> HTTPConnection | None:
        """Pop the newest reusable idle connection, closing the unusable ones met."""
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.is_reusable(now):
                conn.activate()
                return conn
            refusal = conn.reuse_refusal(now) or "not reusable"
            self._note(f"connection #{conn.id} closed: {refusal}")
            conn.close(refusal)
        return None

    def _reserve(self, origin: Origin, fresh: bool) -> bool:
        """Count a connection about to be opened, evicting idle ones if that frees a slot."""
        if self.count(origin) >= self.max_per_origin and not self._evict(origin, same=True):
            return False
        if self._total >= self.max_connections and not self._evict(origin, same=fresh):
            return False
        self._count[origin] = self.count(origin) + 1
        self._total += 1
        return True

    def _evict(self, origin: Origin, *, same: bool) -> bool:
        """Close the oldest idle connection (of *origin* if *same*, else of another)."""
        for key, idle in self._idle.items():
            if idle and (key == origin) == same:
                conn = idle.pop(0)
                self._note(f"connection #{conn.id} closed: evicted to make room")
                conn.close("evicted to make room")
                return True
        return False

    def _unreserve(self, origin: Origin) -> None:
        self._count[origin] -= 1
        if not self._count[origin]:
            del self._count[origin]
        self._total -= 1

    def _dispatch(self) -> None:
        """Serve waiters in order: an idle connection of their origin, or a free slot."""
        if self._dispatching:
            self._again = True  # a slot freed mid-pass: an earlier waiter may go now
            return
        self._dispatching = True
        try:
            self._again = True
            while self._again:
                self._again = False
                waiters = self._waiters
                kept: deque[_Waiter] = deque()
                while waiters:
                    waiter = waiters.popleft()
                    if waiter.future.done():
                        continue
                    conn = None if waiter.fresh else self._take_idle(waiter.origin)
                    if conn is not None:
                        waiter.future.set_result(conn)
                    elif self._reserve(waiter.origin, waiter.fresh):
                        waiter.future.set_result(_SLOT)
                    else:
                        kept.append(waiter)
                waiters.extend(kept)
        finally:
            self._dispatching = False

    def _note(self, line: str) -> None:
        if self._trace is not None:
            self._trace(line)

    # --- lending ------------------------------------------------------------------------------

    def acquire_idle(self, origin: Origin) -> HTTPConnection | None:
        """Lend a reusable idle connection to *origin* now, without awaiting; else None.

        The fast path of :meth:`acquire`: None also when callers are queued (they go
        first) or the pool is closed; the caller then awaits :meth:`acquire`.
        """
        if self._waiters or self._closed:
            return None
        return self._take_idle(origin)

    async def acquire(
        self,
        origin: Origin,
        *,
        pool_timeout: float | None = None,
        connect_timeout: float | None = None,
        fresh: bool = False,
    ) -> tuple[HTTPConnection, bool]:
        """Lend a connection to *origin*; return it and whether it is reused.

        *fresh* asks for a new connection (the retry after a reused one failed).

        Raises:
            PoolTimeout: no connection or slot within *pool_timeout*.
            ConnectTimeout, ConnectError: opening the connection failed.
            ClientClosed: the pool was closed.
        """
        if self._closed:
            raise ClientClosed("the client is closed")
        got: object = None
        if not self._waiters:
            got = None if fresh else self._take_idle(origin)
            if got is None and self._reserve(origin, fresh):
                got = _SLOT
        if got is None:
            future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            waiter = _Waiter(origin, fresh, future)
            self._waiters.append(waiter)
            self._dispatch()  # the queue may hold only finished waiters
            try:
                async with asyncio.timeout(pool_timeout):
                    got = await future
            except BaseException as exc:
                if future.done() and not future.cancelled():
                    self._give_back(origin, future.result())
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                if isinstance(exc, TimeoutError):
                    raise PoolTimeout(
                        f"no connection to {_origin_text(origin)} within {pool_timeout} s"
                    ) from None
                raise
        if isinstance(got, HTTPConnection):
            return got, True
        if isinstance(got, ClientClosed):
            raise got
        try:
            conn = await self._open(origin, connect_timeout)
        except BaseException:
            self._unreserve(origin)
            self._dispatch()
            raise
        return conn, False

    def give_back(self, conn: HTTPConnection) -> None:
        """Take back a lent connection that carried no request (its borrower gave up, or
        the core refused its request before a byte was written): idle again while clean,
        else closed."""
        if conn.return_unused():
            self.release(conn)

    def _give_back(self, origin: Origin, got: object) -> None:
        """A waiter that was served but gave up (timeout, cancel): return what it got."""
        if isinstance(got, HTTPConnection):
            self.give_back(got)
        elif got is _SLOT:
            self._unreserve(origin)
            self._dispatch()

    async def _open(self, origin: Origin, timeout: float | None) -> HTTPConnection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        conn = HTTPConnection(origin, keep_alive=self.keep_alive, idle_timeout=self.idle_timeout)
        ctx = None
        if scheme == "https":
            ctx = self._ssl_context
            if ctx is None:
                ctx = self._ssl_context = default_ssl_context(verify=self._verify)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: conn, host, port, ssl=ctx, server_hostname=host if ctx else None
                )
        except TimeoutError:
            raise ConnectTimeout(
                f"connecting to {_origin_text(origin)} took longer than {timeout} s"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(
                f"cannot connect to {_origin_text(origin)}: TLS certificate verification failed "
                f"({exc.verify_message or exc}); give the CA with verify='ca.pem' or an "
                "ssl_context, or pass verify=False (--insecure) to skip verification"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {_origin_text(origin)}: {exc}") from exc
        conn.activate()
        conn.set_close_callback(self._forget)
        self._all.add(conn)
        self.connections_opened += 1
        if self._closed:
            conn.close("client closed")
            raise ClientClosed("the client is closed")
        return conn

    def release(self, conn: HTTPConnection) -> None:
        """Take a connection back: idle if it finished clean, else it is already closed."""
        if conn.state is ConnState.IDLE and not self._closed:
            idle = self._idle.get(conn.origin)
            if idle is None:  # (not ``setdefault``: no new list per release)
                idle = self._idle[conn.origin] = []
            idle.append(conn)
            if conn.expires_at < self._sweep_at:
                self._arm_sweep(conn.expires_at)
            if self._waiters:
                self._dispatch()  # strict FIFO: the oldest waiter decides what this frees
            return
        if conn.state is not ConnState.CLOSED:
            conn.close("released while not clean")

    def _forget(self, conn: HTTPConnection) -> None:
        """Close callback: drop a closed connection from the books and serve a waiter."""
        self._all.discard(conn)
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)
            if conn.close_reason and not self._closed:
                self._note(f"connection #{conn.id} closed while idle: {conn.close_reason}")
        self._unreserve(conn.origin)
        self._dispatch()

    # --- the idle sweep -------------------------------------------------------------------------

    def _arm_sweep(self, at: float) -> None:
        """Set the pool's one sweep timer to fire at monotonic time *at* (earlier only)."""
        if at == _INF:
            return
        handle = self._sweep_handle
        if handle is not None:
            handle.cancel()
        self._sweep_at = at
        delay = max(0.0, at - time.monotonic())
        self._sweep_handle = asyncio.get_running_loop().call_later(delay, self._sweep)

    def _sweep(self) -> None:
        """Close idle connections past their expiry (or stale); re-arm for the next one."""
        self._sweep_handle = None
        self._sweep_at = _INF
        if self._closed:
            return
        now = time.monotonic()
        limit = now + SWEEP_SLACK
        expired: list[tuple[HTTPConnection, str]] = []
        earliest = _INF
        for idle in self._idle.values():
            kept = []
            for conn in idle:
                if conn.expires_at <= limit:
                    expired.append((conn, "idle past the keep-alive limit"))
                elif conn.is_stale:
                    expired.append((conn, conn.close_reason or "server closed the idle connection"))
                else:
                    kept.append(conn)
                    if conn.expires_at < earliest:
                        earliest = conn.expires_at
            if len(kept) != len(idle):
                idle[:] = kept  # in place: off the idle list before the close callback
        for conn, reason in expired:
            self._note(f"connection #{conn.id} closed: {reason} (idle sweep)")
            conn.close(reason)
        if earliest < self._sweep_at:
            self._arm_sweep(earliest)

    async def aclose(self) -> None:
        """Close every connection and fail every waiter."""
        self._closed = True
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
            self._sweep_at = _INF
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_result(ClientClosed("the client was closed"))
        self._waiters.clear()
        for conn in list(self._all):
            conn.close("client closed")
        await asyncio.sleep(0)


def _origin_text(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}:{port}"


def default_ssl_context(*, verify: bool | str = True) -> ssl.SSLContext:
    """A TLS context that offers only ``http/1.1`` by ALPN (RFC 7301); verification on.

    *verify* is True (the system's CAs), a path to a PEM file of CAs to trust
    instead, or False (no verification at all; only when the user asks).
    """
    ctx = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if verify is False:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
