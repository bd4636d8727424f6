"""One client connection on asyncio: the core engine fed by an ``asyncio.Protocol``.

A connection is ``NEW`` (being opened), ``ACTIVE`` (one exchange in flight),
``IDLE`` (in the pool, clean), ``TUNNEL`` (switched to raw bytes after a 101 or
for CONNECT: out of the pool's idle books for good, still counted against its
limits until closed) or ``CLOSED``. The protocol callbacks run on the event
loop and only feed bytes to the core and wake the one waiting task, or call
the one listener (:meth:`HTTPConnection.set_listener`); everything else runs in
the borrower that owns the exchange (the pool lends a connection to exactly
one task or listener at a time), so no lock is needed.

Because bytes are pushed to us, an idle connection that receives data or EOF
is marked stale at once (``is_stale``): the pool discards it before reuse
instead of sending a request the server will never read (RFC 9112 §9.3.1).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import time
from collections.abc import Callable
from typing import Final, Protocol

from onehop.client.errors import (
    ClientError,
)
from onehop.client.writing import RequestWriter
from onehop.core import Connection as CoreConnection
from onehop.core import (
    Response,
    Role,
    State,
)

#: Origin of a connection: (scheme, host, port).
Origin = tuple[str, str, int]

#: Stop reading from the socket when this many bytes wait unparsed.
_READ_HIGH_WATER: Final = 1 << 20
#: Keep-Alive ``timeout`` margin: the server's clock started before ours and the
#: request needs time to arrive, so stop reusing a little before it closes.
KEEP_ALIVE_MARGIN_FRACTION: Final = 0.25
KEEP_ALIVE_MARGIN_MAX: Final = 1.0

_ids = itertools.count(1)


class ConnState(enum.Enum):
    """Where a pooled connection is in its life."""

    NEW = "NEW"
    ACTIVE = "ACTIVE"
    IDLE = "IDLE"
    TUNNEL = "TUNNEL"
    CLOSED = "CLOSED"


_IDLE: Final = ConnState.IDLE
_ACTIVE: Final = ConnState.ACTIVE
_CLOSED: Final = ConnState.CLOSED


class UpstreamListener(Protocol):
    """What :meth:`HTTPConnection.set_listener` calls, from the event loop's callbacks."""

    def upstream_readable(self) -> object:
        """Bytes, EOF or the loss of the connection arrived: read ``conn.core``
        (``next_event``) and ``conn.at_eof``."""

    def upstream_writable(self) -> object:
        """The transport takes bytes again after a pause (``conn.write_paused`` is False)."""


class TunnelReceiver(Protocol):
    """Where a tunnel's bytes go after :meth:`HTTPConnection.switch`: the
    ``asyncio.Protocol`` callbacks, minus ``connection_made``."""

    def data_received(self, data: bytes) -> object: ...

    def eof_received(self) -> bool | None: ...

    def connection_lost(self, exc: Exception | None) -> object: ...

    def pause_writing(self) -> object: ...

    def resume_writing(self) -> object: ...


def usable_keep_alive(timeout: int) -> float:
    """Seconds an idle connection may be reused after a ``Keep-Alive: timeout=N`` hint.

    ``N`` minus a margin of a quarter of ``N``, at most one second (RFC 7230 §A.1.2
    gives no margin; we pick one so reuse never races the server's close).
    """
    return max(0.0, timeout - min(KEEP_ALIVE_MARGIN_MAX, timeout * KEEP_ALIVE_MARGIN_FRACTION))


class HTTPConnection(RequestWriter):
    """One TCP (or TLS) connection driven by :class:`onehop.core.Connection`.

    Owned by the pool; lent to one task at a time, which calls
    :meth:`send_request`, :meth:`read_response_head`, :meth:`read_chunk` in
    that order. Fields written by protocol callbacks: ``_lost``, ``_stale``,
    ``bytes_received``; everything else by the owning task.

    The class owns the connection's life (the protocol callbacks, the pool's
    reuse checks, keep-or-close after an exchange, tunnels); writing a request
    (:class:`~onehop.client.writing.RequestWriter`) and reading its response
    (:class:`~onehop.client.reading.ResponseReader`) are the bases it builds on.
    """

    def __init__(
        self, origin: Origin, *, keep_alive: bool = True, idle_timeout: float = 60.0
    ) -> None:
        super().__init__(CoreConnection(Role.CLIENT, keep_alive=keep_alive))
        self.id = next(_ids)
        self.origin = origin
        self.state = ConnState.NEW
        self.idle_timeout = idle_timeout
        #: Monotonic time after which an idle connection is not reused.
        self.expires_at = float("inf")
        self.close_reason: str | None = None
        self.alpn: str | None = None
        self._stale = False
        self._close_callback: Callable[[HTTPConnection], None] | None = None
        #: Called instead of waking a task when bytes, EOF or loss arrive (see :meth:`listen`).
        self._listener: Callable[[], object] | None = None
        #: Called when the transport resumes writing (see :meth:`set_listener`).
        self._on_writable: Callable[[], object] | None = None

    def __repr__(self) -> str:
        return f"<HTTPConnection #{self.id} {self.state.name} {self.origin}>"

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they quack alike.
        self._transport = transport  # type: ignore[assignment]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.alpn = ssl_object.selected_alpn_protocol()

    def data_received(self, data: bytes) -> None:
        if self.state is _IDLE:
            self._stale = True
            self.close_reason = "server sent bytes on an idle connection"
        self.bytes_received += len(data)
        core = self.core
        core.receive_data(data)
        if core.buffered > _READ_HIGH_WATER and self._transport is not None:
            self._transport.pause_reading()
            self._read_paused = True
        listener = self._listener
        if listener is not None:
            listener()
            return
        waiter = self._waiter  # (``_wake`` inlined)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool | None:
        if self.state is ConnState.IDLE:
            self._stale = True
            self.close_reason = "server closed the idle connection"
        self._eof = True
        self.core.receive_data(b"")
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost:
            self._lost = True
            self._lost_exc = exc
            self.core.receive_data(b"")
        if self.state is ConnState.IDLE and self.close_reason is None:
            self.close_reason = "server closed the idle connection"
        self._wake()
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)
        if self.state is ConnState.IDLE:
            self.close(self.close_reason or "connection lost")

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)
        on_writable = self._on_writable
        if on_writable is not None:
            on_writable()

    def _wake(self) -> None:
        listener = self._listener
        if listener is not None:
            listener()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- pool-facing --------------------------------------------------------------------------

    def set_close_callback(self, callback: Callable[[HTTPConnection], None]) -> None:
        """Register the pool's ``callback(conn)``, called once when the connection closes."""
        self._close_callback = callback

    @property
    def write_paused(self) -> bool:
        """Whether the transport's buffer is full (await :meth:`drain` before writing more)."""
        return self._write_paused

    @property
    def at_eof(self) -> bool:
        """Whether the server closed its side (or the connection is gone): nothing more comes."""
        return self._eof or self._lost

    def set_listener(self, listener: UpstreamListener | None) -> None:
        """Have the connection's events call *listener* (None: stop) instead of waking a task.

        ``listener.upstream_readable()`` when bytes, EOF or loss arrive (the
        caller reads ``core`` and ``at_eof``); ``listener.upstream_writable()``
        when the transport resumes writing after it paused (``write_paused``),
        so a caller that streams a request body from callbacks
        (:meth:`send_head_nowait`, :meth:`send_data_nowait`,
        :meth:`send_end_nowait`) stops when they return True and goes on from
        ``upstream_writable``: flow control without a task. One listener or
        task owns the connection at a time. A listener that stops reading
        while bytes pile up (over 1 MiB unparsed, reading pauses) calls
        :meth:`resume_reading` when it reads on.
        """
        if listener is None:
            self._listener = self._on_writable = None
        else:
            self._listener = listener.upstream_readable
            self._on_writable = listener.upstream_writable

    def listen(self, callback: Callable[[], object] | None) -> None:
        """Have bytes, EOF and loss call *callback* (None: stop) instead of waking a task.

        For a relay that can answer from the event loop's callback when the whole
        response is already here (a task switch per response costs more than the
        rest of a small exchange); it reads ``core`` itself and, when it must
        wait after all, stops listening and hands over to a task that uses
        :meth:`read_response_head` and :meth:`wait_data`. Only one task or
        listener owns the connection at a time, so no waiter is pending meanwhile.
        (:meth:`set_listener` is the same with a write-side callback too.)
        """
        self._listener = callback
        self._on_writable = None

    @property
    def is_stale(self) -> bool:
        """The server sent bytes or closed while we were idle: never reuse (RFC 9112 §9.3.1)."""
        return self._stale or self._lost

    def is_reusable(self, now: float) -> bool:
        """Whether this idle connection may carry another request at monotonic time *now*.

        The pool's one reuse check (RFC 9112 §9.3: both sides done and clean; §9.3.1:
        nothing arrived while idle; RFC 7230 §A.1.2: within the server's Keep-Alive
        hint), written out flat because it runs once per pooled request;
        :meth:`reuse_refusal` says why not, and agrees with it.
        """
        return (not self._stale and not self._lost and now < self.expires_at
                and self.core.is_idle)

    def reuse_refusal(self, now: float) -> str | None:
        """Why this idle connection must not carry another request, or None if it may
        (None exactly when :meth:`is_reusable`)."""
        if self.is_stale:
            return self.close_reason or "server closed the idle connection"
        if now >= self.expires_at:
            return "idle past the keep-alive limit"
        if not self.core.is_idle:
            return "connection not clean"
        return None

    def return_unused(self) -> bool:
        """Go back to IDLE after a lending that carried no request; return whether kept.

        For a borrower that gave up before writing (a pool waiter that timed out
        once served, a request the core refused): the connection is as clean as
        when it was lent (RFC 9112 §9.3), else it is closed. One never used
        starts its idle life now.
        """
        if self.state is not ConnState.ACTIVE:
            return False
        if not self.core.is_idle or self._lost or self._stale:
            self.close("returned unused, but not clean")
            return False
        if self.expires_at == float("inf"):
            self.expires_at = time.monotonic() + self.idle_timeout
        self.state = ConnState.IDLE
        return True

    def activate(self) -> None:
        """Take the connection for one exchange (the pool calls this when lending it)."""
        self.state = _ACTIVE

    def close(self, reason: str = "closed") -> None:
        """Close the socket now; idempotent. *reason* is kept for ``-v`` output and errors."""
        if self.state is ConnState.CLOSED:
            return
        self.state = ConnState.CLOSED
        if self.close_reason is None or not self._stale:
            self.close_reason = reason
        self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
        self._wake()
        callback = self._close_callback
        self._close_callback = None
        if callback is not None:
            callback(self)

    def abort(self, reason: str = "aborted") -> None:
        """Close without flushing (after a timeout or a broken exchange)."""
        if self._transport is not None:
            self._transport.abort()
        self.close(reason)

    # --- tunnels ------------------------------------------------------------------------------

    def switch(self, receiver: TunnelReceiver) -> None:
        """Make the connection a tunnel: from now on raw bytes go to *receiver*.

        After a ``101 Switching Protocols`` (RFC 9110 §15.2.2) or a 2xx to
        CONNECT (RFC 9110 §9.3.6) the bytes on the connection are no longer
        HTTP/1.1; or, for a CONNECT the proxy serves itself, before any request.
        *receiver* first gets the bytes that came after the response head
        (the core's ``trailing_data``), then whatever arrives, EOF, the loss of
        the connection (exactly once), and the transport's pause/resume of
        writing. Write with :meth:`write` and :meth:`write_eof`; hold reading
        with :meth:`pause_reading`. The connection is ``TUNNEL`` from now on: it
        never goes back to the pool's idle list, and it counts against the
        pool's limits until it closes.

        Raises:
            ClientError: the connection is mid-exchange, idle in the pool, or closed.
        """
        core = self.core
        if self.state is not ConnState.ACTIVE:
            raise ClientError(f"cannot switch a {self.state.name} connection to a tunnel")
        if core.their_state is not State.SWITCHED and (self.requests_sent or not core.is_idle):
            raise ClientError("a connection becomes a tunnel only after a 101 or a 2xx to "
                              "CONNECT, or before any request")
        self.state = ConnState.TUNNEL
        self._listener = self._on_writable = None
        self._timer.cancel()
        data, eof = core.trailing_data
        transport = self._transport
        lost = self._lost or transport is None
        if not lost:
            assert transport is not None
            transport.set_protocol(_Tunnel(self, receiver))
            if self._read_paused:
                self.resume_reading()
        if data:
            receiver.data_received(data)
        if eof:
            receiver.eof_received()
        if self._write_paused:
            receiver.pause_writing()
        if lost:
            self._tunnel_lost(receiver, self._lost_exc if isinstance(self._lost_exc, Exception)
                              else None)

    def _tunnel_lost(self, receiver: TunnelReceiver, exc: Exception | None) -> None:
        """The tunnel's transport is gone: tell *receiver*, then leave the pool's books."""
        self._lost = True
        try:
            receiver.connection_lost(exc)
        finally:
            self.close("tunnel closed")

    def write(self, data: bytes) -> None:
        """Write raw bytes into the tunnel (see :meth:`switch`).

        Raises:
            ClientError: the connection is not a tunnel (HTTP goes through the core).
        """
        if self.state is not ConnState.TUNNEL:
            raise ClientError("write() is for tunnels; send HTTP with send_request")
        assert self._transport is not None
        self._transport.write(data)

    def write_eof(self) -> None:
        """Half-close the tunnel: no more bytes from our side (TCP FIN; not over TLS)."""
        if self.state is not ConnState.TUNNEL:
            raise ClientError("write_eof() is for tunnels")
        transport = self._transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()

    def pause_reading(self) -> None:
        """Stop reading from the socket (a tunnel whose other side is slow)."""
        if self._transport is not None and not self._read_paused:
            self._read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the socket again after :meth:`pause_reading` (or after reading
        paused with 1 MiB unparsed, for a :meth:`set_listener` caller)."""
        if self._transport is not None and self._read_paused:
            self._read_paused = False
            self._transport.resume_reading()

    # --- the exchange -------------------------------------------------------------------------






















    def finish_exchange(self, response: Response) -> bool:
        """After the whole response is read: go IDLE if clean, else close. Return whether kept.

        RFC 9112 §9.3: reuse only when both messages are complete, no ``close``
        was sent or received, and no EOF was seen; the server's ``Keep-Alive``
        hints (RFC 7230 §A.1.2) shorten the idle life and cap the requests.
        """
        if self.state is _CLOSED:
            return False
        core = self.core
        if not core.is_idle or self._lost or self._stale:
            self.close(self._why_not_persistent(response))
            return False
        life = self.idle_timeout
        # ``Keep-Alive`` is hop-by-hop, so it is filed with the connection fields;
        # most responses have none (or only ``Connection``): skip the parser.
        for f in response.connection.fields.fields:
            if f[0] == b"keep-alive":
                params = response.connection.keep_alive_params
                if params.timeout is not None:
                    life = min(life, usable_keep_alive(params.timeout))
                if params.max is not None:
                    self.requests_left = params.max
                break
        if life <= 0 or self.requests_left == 0:
            self.close("server's Keep-Alive limit reached"
                       if self.requests_left == 0 else "server's Keep-Alive timeout too short")
            return False
        self.expires_at = time.monotonic() + life
        self.state = _IDLE
        return True

    def _why_not_persistent(self, response: Response) -> str:
        if self._body_skipped:
            return "server answered before the request body was sent (Expect: 100-continue)"
        if response.connection.close:
            return "server sent Connection: close"
        if response.http_version == b"1.0" and not response.connection.keep_alive:
            return "HTTP/1.0 response without keep-alive"
        if not self.core.keep_alive:
            return "client sent Connection: close"
        if self._lost or self._stale:
            return "server closed the connection"
        return "connection not clean after the exchange"


class _Tunnel(asyncio.Protocol):
    """The transport's protocol once its connection is a tunnel: every callback goes
    straight to the receiver, and the loss also closes the connection, so the pool
    counts it until then. (Set with ``set_protocol``, so HTTP traffic pays nothing
    for tunnels.)"""

    __slots__ = ("_conn", "_receiver")

    def __init__(self, conn: HTTPConnection, receiver: TunnelReceiver) -> None:
        self._conn = conn
        self._receiver = receiver

    def data_received(self, data: bytes) -> None:
        self._receiver.data_received(data)

    def eof_received(self) -> bool | None:
        return self._receiver.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn._tunnel_lost(self._receiver, exc)

    def pause_writing(self) -> None:
        self._receiver.pause_writing()

    def resume_writing(self) -> None:
        self._receiver.resume_writing()

