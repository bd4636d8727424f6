"""A connection pool per origin, with per-origin and total limits.

Decisions are pure steps over the pool's own bookkeeping (which idle connection
to lend, whether a slot is free, which waiter goes next); I/O (opening a
socket) happens after, outside them, as httpcore does. Everything runs on one
event loop; the bookkeeping is only touched between awaits, so no lock.

- Waiting callers are served in arrival order (FIFO) within an origin; a free
  slot under the total limit goes to the oldest waiter of any origin. Each
  origin has its own queue, so serving the head of a queue never walks the
  waiters behind it: a release costs O(origins waiting + waiters served), not
  O(waiters) (at 1,000 queued proxy requests the walk was 82% of the CPU).
- A caller is served at once, ahead of the queues, only when its own origin
  has none, and takes a new connection's slot only when nobody waits on the
  total limit.
- A waiter that gives up (timeout, cancel, :meth:`Loan.cancel`) is marked and
  skipped when it reaches its queue's head: O(1).
- Idle connections are reused newest first (LIFO): the newest is the least
  likely to have been closed by the server.
- An idle connection is not reused once past the client's idle limit or the
  server's ``Keep-Alive: timeout`` minus a margin, or once its socket turned
  readable or hit EOF (RFC 9112 §9.3.1: the server may close an idle
  connection at any time); :meth:`HTTPConnection.is_reusable` says so.
- A connection comes back only when ``is_idle`` (RFC 9112 §9.3, §9.6). A
  connection switched to a tunnel (101, CONNECT) never comes back, but counts
  against the limits until it closes.
- Idle connections past that expiry are also closed without waiting for the
  next request: one timer per pool (not per connection) fires at the earliest
  expiry among the idle connections, closes every idle connection expired by
  then, and re-arms for the next earliest; it is not armed while nothing is
  idle, and is cancelled when the pool closes. So the client does not keep
  sockets the server is about to close (RFC 7230 §A.1.2 ``Keep-Alive: timeout``).

Two ways to wait for a connection share the one queue: :meth:`Pool.acquire`
awaits in the caller's task; :meth:`Pool.lend` takes callbacks, for an
event-driven caller (the proxy) that runs no task per request. The waiters
themselves are in :mod:`onehop.client.waiters`; opening a socket in
:mod:`onehop.client.dialing`.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from onehop.client.connection import ConnState, HTTPConnection, Origin
from onehop.client.dialing import default_ssl_context, dial, origin_text
from onehop.client.errors import (
    ClientClosed,
    ClientError,
    ConnectError,
    PoolTimeout,
)
from onehop.client.waiters import (
    SLOT,
    Loan,
    LoanState,
    OnFailed,
    OnLent,
    Slot,
    TaskWaiter,
    Waiter,
)

#: ``Loan`` is what :meth:`Pool.lend` returns, so it is importable from here too.
__all__ = ["Loan", "LoanState", "Pool", "default_ssl_context"]

Trace = Callable[[str], None]
#: The idle sweep also closes connections expiring within this many seconds, so
#: connections released close together share one timer firing.
SWEEP_SLACK: Final = 0.05
_INF: Final = float("inf")
_IDLE: Final = ConnState.IDLE


class Pool:
    """Connections per origin; lends one to one task (or :class:`Loan`) at a time.

    Args:
        max_connections: open connections in total (idle, active, opening and tunnels).
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
        #: Waiters per origin in arrival order. Invariant: every queue is non-empty and
        #: its head is still queued (withdrawn waiters behind it are skipped later).
        self._queues: dict[Origin, deque[Waiter]] = {}
        #: Waiters still queued, over all origins.
        self._waiting = 0
        self._seq = itertools.count(1)
        self._all: set[HTTPConnection] = set()
        #: Tasks opening a connection for a :class:`Loan` (cancelled by :meth:`aclose`).
        self._opening: set[asyncio.Task[None]] = set()
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
        """Open connections, including ones being opened and tunnels."""
        return self._total

    def count(self, origin: Origin) -> int:
        """Open connections to *origin*, including ones being opened and tunnels."""
        return self._count.get(origin, 0)

    def idle_count(self, origin: Origin | None = None) -> int:
        """Idle connections, for one origin or all."""
        if origin is not None:
            return len(self._idle.get(origin, ()))
        return sum(len(v) for v in self._idle.values())

    @property
    def waiting(self) -> int:
        """Callers waiting for a connection (tasks and loans)."""
        return self._waiting

    def queued(self, origin: Origin) -> bool:
        """Whether callers wait for a connection to *origin* (a newcomer queues behind them)."""
        return origin in self._queues

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

    def _try_now(self, origin: Origin, fresh: bool) -> HTTPConnection | Slot | None:
        """Serve a newcomer at once if that jumps no queue: an idle connection when its
        origin has no queue, a slot when nobody waits on the total limit; else None."""
        if self._queues and origin in self._queues:
            return None  # FIFO: the origin's waiters go first
        if not fresh:
            conn = self._take_idle(origin)
            if conn is not None:
                return conn
        if self._waiting and self._total >= self.max_connections:
            return None  # room made by eviction goes to the oldest waiter
        return SLOT if self._reserve(origin, fresh) else None

    def _enqueue(self, waiter: Waiter) -> None:
        waiter.seq = next(self._seq)
        waiter.queued = True
        q = self._queues.get(waiter.origin)
        if q is None:
            q = self._queues[waiter.origin] = deque()
        q.append(waiter)
        self._waiting += 1

    def _withdraw(self, waiter: Waiter) -> None:
        """Take a waiter out of the count at once, out of its queue when it reaches the
        head: O(1) (amortised), instead of searching the queue."""
        if not waiter.queued:
            return
        waiter.queued = False
        self._waiting -= 1
        q = self._queues[waiter.origin]
        if q[0] is waiter:
            self._trim(waiter.origin, q)
            if q:
                self._dispatch()  # the new head may want what the old one could not use

    def _trim(self, origin: Origin, q: deque[Waiter]) -> None:
        """Drop withdrawn waiters from the head of *q* (the queue's invariant)."""
        while q and not q[0].queued:
            q.popleft()
        if not q:
            del self._queues[origin]

    def _dispatch(self) -> None:
        """Serve each origin's queue from its head, the oldest head first, until a head
        gets neither an idle connection of its origin nor a slot.

        Stopping at the first head that cannot be served is what keeps a pass at
        O(origins waiting + waiters served): the waiters behind it want the same.
        """
        if self._dispatching:
            self._again = True  # a slot freed mid-pass: an earlier waiter may go now
            return
        self._dispatching = True
        try:
            self._again = True
            while self._again and self._queues:
                self._again = False
                queues = self._queues
                if len(queues) == 1:
                    order: list[Origin] | tuple[Origin, ...] = tuple(queues)
                else:
                    order = sorted(queues, key=lambda o: queues[o][0].seq)
                for origin in order:
                    q = queues.get(origin)
                    while q:
                        waiter = q[0]
                        if waiter.abandoned():
                            waiter.queued = False
                            self._waiting -= 1
                            self._trim(origin, q)
                            continue
                        got: HTTPConnection | Slot | None = (
                            None if waiter.fresh else self._take_idle(origin))
                        if got is None:
                            if not self._reserve(origin, waiter.fresh):
                                break
                            got = SLOT
                        waiter.queued = False
                        self._waiting -= 1
                        self._trim(origin, q)
                        waiter.serve(got)
        finally:
            self._dispatching = False

    def _note(self, line: str) -> None:
        if self._trace is not None:
            self._trace(line)

    def _trace_head(self, head: bytes) -> None:
        """Trace a request head as sent: one ``> `` line per line, ``> `` for the blank
        line that ends it (as curl's ``-v`` shows them)."""
        assert self._trace is not None
        for line in head.split(b"\r\n")[:-1]:
            self._trace(f"> {line.decode('latin-1')}")

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    # --- lending ------------------------------------------------------------------------------

    def acquire_idle(self, origin: Origin) -> HTTPConnection | None:
        """Lend a reusable idle connection to *origin* now, without awaiting; else None.

        The fast path of :meth:`acquire`: None also when callers for *origin* are
        queued (they go first) or the pool is closed; the caller then awaits
        :meth:`acquire` (or uses :meth:`lend`).
        """
        if self._closed or (self._queues and origin in self._queues):
            return None
        return self._take_idle(origin)

    def lend(
        self,
        origin: Origin,
        on_lent: OnLent,
        on_failed: OnFailed,
        *,
        fresh: bool = False,
        connect_timeout: float | None = None,
    ) -> HTTPConnection | Loan:
        """Lend a connection to *origin* without a task: now, or through callbacks.

        Returns a reusable idle connection at once when there is one and no
        caller for *origin* is queued. Otherwise returns a :class:`Loan` and
        later, from an event-loop callback, calls ``on_lent(conn, reused)``
        with an idle connection handed over (``reused`` True) or one the pool
        opened itself for a free slot (False), or ``on_failed(error)`` with
        :class:`ConnectError`, :class:`ConnectTimeout` or :class:`ClientClosed`.
        The caller times its own wait and withdraws with ``loan.cancel()``.
        *fresh* asks for a new connection (a resend after a reused one failed).

        Raises:
            ClientClosed: the pool is closed.
        """
        if self._closed:
            raise ClientClosed("the client is closed")
        got = self._try_now(origin, fresh)
        if isinstance(got, HTTPConnection):
            return got
        loan = Loan(self, origin, fresh, on_lent, on_failed, connect_timeout)
        if got is None:
            self._enqueue(loan)
        else:
            loan.serve(got)
        return loan

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
        got: object = self._try_now(origin, fresh)
        if got is None:
            future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            waiter = TaskWaiter(origin, fresh, future)
            self._enqueue(waiter)
            try:
                async with asyncio.timeout(pool_timeout):
                    got = await future
            except BaseException as exc:
                if future.done() and not future.cancelled():
                    self._give_back(origin, future.result())
                else:
                    self._withdraw(waiter)
                if isinstance(exc, TimeoutError):
                    raise PoolTimeout(
                        f"no connection to {origin_text(origin)} within {pool_timeout} s"
                    ) from None
                raise
        if isinstance(got, HTTPConnection):
            return got, True
        if isinstance(got, ClientError):
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
        elif got is SLOT:
            self._unreserve(origin)
            self._dispatch()

    def _start_open(self, loan: Loan) -> None:
        """Open a connection for *loan*, which holds a slot, in a task of the pool's."""
        task = asyncio.get_running_loop().create_task(self._open_for(loan))
        self._opening.add(task)
        task.add_done_callback(lambda t: self._opened(t, loan))

    def _opened(self, task: asyncio.Task[None], loan: Loan) -> None:
        """Done callback of :meth:`_open_for`. A task cancelled before it ever ran
        (:meth:`aclose`) did not give its slot back nor tell its loan: do it here."""
        self._opening.discard(task)
        if task.cancelled():
            self._unreserve(loan.origin)
            if loan.state is LoanState.OPENING:
                loan.fail(ClientClosed("the client was closed"))

    async def _open_for(self, loan: Loan) -> None:
        """Connect with *loan*'s slot; lend the connection, or report why not.

        A loan cancelled meanwhile leaves the new connection idle for the next
        caller; a failure gives the slot back.
        """
        origin = loan.origin
        try:
            conn = await self._open(origin, loan.connect_timeout)
        except (Exception, asyncio.CancelledError) as exc:
            self._unreserve(origin)
            self._dispatch()
            if loan.state is LoanState.OPENING:
                if isinstance(exc, ClientError):
                    loan.fail(exc)
                elif isinstance(exc, asyncio.CancelledError):
                    loan.fail(ClientClosed("the client was closed"))
                else:  # (a bug: still, the loan must hear back)
                    loan.fail(ConnectError(f"cannot connect to {origin_text(origin)}: {exc!r}"))
            return  # (a cancel is answered, not re-raised: ``_opened`` sees a finished task)
        if loan.state is LoanState.OPENING:
            loan.state = LoanState.LENDING
            loan.conn = conn
            asyncio.get_running_loop().call_soon(loan._deliver, False)
        else:
            self.give_back(conn)  # (cancelled while connecting: keep it for the next caller)

    async def _open(self, origin: Origin, timeout: float | None) -> HTTPConnection:
        conn = HTTPConnection(origin, keep_alive=self.keep_alive, idle_timeout=self.idle_timeout)
        if self._trace is not None:
            conn.on_head = self._trace_head
        ctx = None
        if origin[0] == "https":
            ctx = self._ssl_context
            if ctx is None:
                ctx = self._ssl_context = default_ssl_context(verify=self._verify)
        await dial(conn, ctx, timeout)
        self.connections_opened += 1
        if self._closed:
            # (Before the close callback is set: the caller gives the slot back, once.)
            conn.close("client closed")
            raise ClientClosed("the client is closed")
        conn.activate()
        conn.set_close_callback(self._forget)
        self._all.add(conn)
        return conn

    def release(self, conn: HTTPConnection) -> None:
        """Take a connection back: idle if it finished clean, else it is already closed."""
        if conn.state is _IDLE and not self._closed:
            idle = self._idle.get(conn.origin)
            if idle is None:  # (not ``setdefault``: no new list per release)
                idle = self._idle[conn.origin] = []
            idle.append(conn)
            if conn.expires_at < self._sweep_at:
                self._arm_sweep(conn.expires_at)
            if self._queues:
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
        if self._queues:
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
        """Close every connection (tunnels too) and fail every waiter and loan."""
        self._closed = True
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
            self._sweep_at = _INF
        queues, self._queues = self._queues, {}
        self._waiting = 0
        for q in queues.values():
            for waiter in q:
                if waiter.queued:
                    waiter.queued = False
                    waiter.fail(ClientClosed("the client was closed"))
        for task in list(self._opening):
            task.cancel()
        for conn in list(self._all):
            conn.close("client closed")
        await asyncio.sleep(0)

