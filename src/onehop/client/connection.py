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
from collections.abc import AsyncIterable, Callable
from typing import Final, Protocol

from onehop._aio import LazyTimer
from onehop.client.errors import (
    ClientError,
    ClosedBeforeResponse,
    NothingWritten,
    ReadTimeout,
    ServerDisconnected,
    WriteTimeout,
)
from onehop.core import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    Request,
    Response,
    Role,
    State,
)
from onehop.core import Connection as CoreConnection

#: Origin of a connection: (scheme, host, port).
Origin = tuple[str, str, int]

#: Stop reading from the socket when this many bytes wait unparsed.
_READ_HIGH_WATER: Final = 1 << 20
#: Keep-Alive ``timeout`` margin: the server's clock started before ours and the
#: request needs time to arrive, so stop reusing a little before it closes.
KEEP_ALIVE_MARGIN_FRACTION: Final = 0.25
KEEP_ALIVE_MARGIN_MAX: Final = 1.0

_ids = itertools.count(1)
_END: Final = EndOfMessage()


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


class HTTPConnection(asyncio.Protocol):
    """One TCP (or TLS) connection driven by :class:`onehop.core.Connection`.

    Owned by the pool; lent to one task at a time, which calls
    :meth:`send_request`, :meth:`read_response_head`, :meth:`read_chunk` in
    that order. Fields written by protocol callbacks: ``_lost``, ``_stale``,
    ``bytes_received``; everything else by the owning task.
    """

    def __init__(
        self, origin: Origin, *, keep_alive: bool = True, idle_timeout: float = 60.0
    ) -> None:
        self.id = next(_ids)
        self.origin = origin
        self.state = ConnState.NEW
        self.core = CoreConnection(Role.CLIENT, keep_alive=keep_alive)
        self.idle_timeout = idle_timeout
        #: Monotonic time after which an idle connection is not reused.
        self.expires_at = float("inf")
        #: Requests the server still accepts (``Keep-Alive: max``), None if unknown.
        self.requests_left: int | None = None
        self.requests_sent = 0
        #: Bytes received since the current request was sent (for retry decisions).
        self.bytes_received = 0
        self.close_reason: str | None = None
        self.alpn: str | None = None
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._read_paused = False
        self._lost = False
        self._stale = False
        self._eof = False
        self._lost_exc: BaseException | None = None
        self._close_callback: Callable[[HTTPConnection], None] | None = None
        #: A final response that arrived while we waited for ``100 Continue``.
        self._early: Response | None = None
        self._body_skipped = False
        #: A 1xx response arrived for the current request (its answer has begun).
        self._informed = False
        #: Called instead of waking a task when bytes, EOF or loss arrive (see :meth:`listen`).
        self._listener: Callable[[], object] | None = None
        #: Called when the transport resumes writing (see :meth:`set_listener`).
        self._on_writable: Callable[[], object] | None = None
        #: Called with each request head exactly as the core wrote it (``-v`` shows
        #: every byte sent, the ``Connection`` line the core adds included). Set by
        #: the pool when tracing.
        self.on_head: Callable[[bytes], object] | None = None
        # One lazily re-armed read timer for every wait, so a warm exchange costs
        # no timer churn; it times out the waiter in ``_waiter``.
        self._timer = LazyTimer(self._loop, self._read_timed_out)

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

    async def send_request(
        self,
        request: Request,
        body: bytes | AsyncIterable[bytes] | None,
        write_timeout: float | None,
        continue_wait: float | None = None,
        *,
        trailers: Callable[[], Headers] | None = None,
    ) -> None:
        """Write the request head and body.

        *trailers*, for a streamed (iterable) body sent chunked, is called once
        the body is exhausted and returns the trailer fields to end it with
        (RFC 9112 §7.1.2); a proxy passes on those its client sent.

        With *continue_wait* and an ``Expect: 100-continue`` request, write the
        head, then the body only after ``100 Continue`` or *continue_wait*
        seconds; a final status that comes first is kept for
        :meth:`read_response_head` and the body is never sent (RFC 9110
        §10.1.1), which leaves the connection unclean, so it closes after the
        response.

        Raises:
            NothingWritten: the connection was already gone.
            ClosedBeforeResponse: it broke during the upload, before any response byte.
            ServerDisconnected: it broke during the upload after the server began to answer.
            LocalProtocolError: the core refused the request (or a body piece);
                when it refused the head, nothing was written.
            WriteTimeout: the server did not take the bytes in time.
        """
        if body is None:
            if self.send_request_nowait(request):
                await self._drain(write_timeout)
            return
        core = self.core
        transport = self._begin_request()
        out = core.send(request)
        if self.on_head is not None:
            self.on_head(out)
        self.requests_sent += 1
        if self.requests_left is not None:
            self.requests_left -= 1
        if continue_wait is not None and request.expects_continue:
            self._write(transport, out)
            out = b""
            if self._write_paused:
                await self._drain(write_timeout)
            self._early = await self._await_continue(continue_wait)
            if self._early is not None:
                self._body_skipped = True
                return
        if isinstance(body, bytes | bytearray | memoryview):
            if body:
                out += core.send(Data(bytes(body)))
            out += core.send(EndOfMessage())
            self._write(transport, out)
            if self._write_paused:
                await self._drain(write_timeout)
            return
        self._write(transport, out)
        async for chunk in body:
            if chunk:
                if self._lost:
                    raise self.lost_error()
                self._write(transport, core.send(Data(bytes(chunk))))
                if self._write_paused:
                    await self._drain(write_timeout)
        end = EndOfMessage(trailers()) if trailers is not None else EndOfMessage()
        self._write(transport, core.send(end))
        if self._write_paused:
            await self._drain(write_timeout)

    def _write(self, transport: asyncio.Transport, data: bytes) -> None:
        """Write *data*; a socket error (seldom raised here: asyncio reports most
        through ``connection_lost``) becomes the typed error of :meth:`lost_error`."""
        try:
            transport.write(data)
        except OSError as exc:
            raise self.lost_error(exc) from exc

    def send_request_nowait(self, request: Request) -> bool:
        """Write a request without content, synchronously: :meth:`send_request` with
        no body, minus the coroutine. Return whether the caller must then await
        :meth:`drain` (the transport's buffer is full).

        Raises:
            NothingWritten: the connection was already gone.
            LocalProtocolError: the core refused the request; nothing was written.
        """
        transport = self._begin_request()
        core = self.core
        data = core.send(request)  # (LocalProtocolError: nothing written)
        if self.on_head is not None:
            self.on_head(data)
        data += core.send(_END)
        self.requests_sent += 1
        if self.requests_left is not None:
            self.requests_left -= 1
        try:
            transport.write(data)
        except OSError as exc:
            raise self.lost_error(exc) from exc
        return self._write_paused

    def send_head_nowait(self, request: Request) -> bool:
        """Write a request head whose body follows by :meth:`send_data_nowait` and
        :meth:`send_end_nowait`, synchronously, for a caller without a task (see
        :meth:`set_listener`). Return whether writing is paused: then wait for
        ``upstream_writable`` before sending more.

        Raises:
            NothingWritten: the connection was already gone.
            LocalProtocolError: the core refused the request; nothing was written.
        """
        transport = self._begin_request()
        data = self.core.send(request)
        if self.on_head is not None:
            self.on_head(data)
        self.requests_sent += 1
        if self.requests_left is not None:
            self.requests_left -= 1
        self._write(transport, data)
        return self._write_paused

    def send_data_nowait(self, data: bytes) -> bool:
        """Write a piece of the request body (framed by the core: chunked or counted
        against Content-Length, RFC 9112 §6). Return whether writing is paused.

        Raises:
            ClosedBeforeResponse, ServerDisconnected: the connection broke (:meth:`lost_error`).
            LocalProtocolError: more than the Content-Length, or no body may follow.
        """
        transport = self._transport
        if self._lost or transport is None:
            raise self.lost_error()
        if data:
            self._write(transport, self.core.send(Data(data)))
        return self._write_paused

    def send_end_nowait(self, trailers: Headers | None = None) -> bool:
        """End the request body, with *trailers* if chunked (RFC 9112 §7.1.2). Return
        whether writing is paused.

        Raises:
            ClosedBeforeResponse, ServerDisconnected: the connection broke.
            LocalProtocolError: fewer bytes than the Content-Length were sent.
        """
        transport = self._transport
        if self._lost or transport is None:
            raise self.lost_error()
        end = _END if trailers is None else EndOfMessage(trailers)
        self._write(transport, self.core.send(end))
        return self._write_paused

    def _begin_request(self) -> asyncio.Transport:
        """Check that a request can be written; return the transport to write it to.

        Raises:
            NothingWritten: the connection was already gone (Go's nothingWrittenError:
                safe to send again elsewhere, whatever the method).
        """
        transport = self._transport
        if self._lost or transport is None or transport.is_closing():
            raise NothingWritten(
                "the connection was closed before the request was sent"
                + (f" ({self._lost_exc})" if self._lost_exc else "")
            )
        self.bytes_received = 0
        return transport

    def lost_error(self, exc: OSError | None = None) -> ServerDisconnected:
        """The error for a connection that broke after the request began to go out.

        :class:`ClosedBeforeResponse` while no byte came back since the request was
        written (RFC 9112 §9.3.1: the keep-alive race if the connection was reused),
        else :class:`ServerDisconnected`. *exc* is the socket's error, if any.
        """
        exc = exc or (self._lost_exc if isinstance(self._lost_exc, OSError) else None)
        text = "server closed the connection during the upload"
        if isinstance(exc, ConnectionResetError):
            text = "connection reset by the server during the upload"
        if exc is not None:
            text += f" ({exc})"
        if self.bytes_received or self._informed:
            return ServerDisconnected(text)
        # (Pipelined, ``bytes_received`` also counts earlier answers since this request
        # began: then this says ServerDisconnected, the cautious side.)
        return ClosedBeforeResponse(text)

    async def drain(self, write_timeout: float | None) -> None:
        """Wait until the transport takes more bytes (after :meth:`send_request_nowait`).

        Raises:
            WriteTimeout, ServerDisconnected.
        """
        await self._drain(write_timeout)

    async def _await_continue(self, wait: float) -> Response | None:
        """Wait up to *wait* s for ``100 Continue``; return a final response that came first.

        RFC 9110 §10.1.1: a client that sent ``100-continue`` need not wait
        forever (an HTTP/1.0 server or proxy never sends 100).

        Raises:
            ClosedBeforeResponse: the server closed before answering.
            ServerDisconnected: it closed after an interim (1xx) response.
        """
        deadline = self._loop.time() + wait
        while True:
            left = deadline - self._loop.time()
            if left <= 0:
                return None
            try:
                event = await self._next_event(left)
            except ReadTimeout:
                return None
            if type(event) is InformationalResponse:
                self._informed = True
                if event.status_code == 100:
                    return None
                continue
            if type(event) is Response:
                return event
            raise self._closed_unanswered()

    async def _drain(self, timeout: float | None) -> None:
        while self._write_paused and not self._lost:
            fut = self._drain_waiter = self._loop.create_future()
            handle = None
            if timeout is not None:
                handle = self._loop.call_later(timeout, _expire, fut, WriteTimeout)
            try:
                await fut
            finally:
                self._drain_waiter = None
                if handle is not None:
                    handle.cancel()
        if self._lost:
            raise self.lost_error()

    def _prepare_wait(self, timeout: float | None) -> asyncio.Future[None]:
        """The future the next ``data_received``/EOF/close resolves (timed by *timeout*)."""
        if self._read_paused and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()
        fut = self._waiter = self._loop.create_future()
        if timeout is not None:
            self._timer.arm(timeout)
        return fut

    async def _next_event(self, timeout: float | None) -> Event:
        core = self.core
        while True:
            event = core.next_event()
            if event is not NEED_DATA:
                if not isinstance(event, Event):
                    raise _paused()
                return event
            try:
                await self._prepare_wait(timeout)
            finally:
                self._waiter = None
                self._timer.disarm()

    def _read_timed_out(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ReadTimeout("timed out"))

    async def read_response_head(
        self,
        timeout: float | None,
        *,
        on_informational: Callable[[InformationalResponse], object] | None = None,
    ) -> Response:
        """Return the final response head, skipping 1xx responses (RFC 9110 §15.2).

        *on_informational*, if given, is called with each 1xx response as it
        arrives (a proxy relays them: RFC 9110 §15.2, "A proxy MUST forward 1xx
        responses"); without it they are skipped, as a user agent may.

        Raises:
            ClosedBeforeResponse: the server closed (or reset) before this response
                began, or had answered an earlier pipelined request with ``close``.
            ServerDisconnected: it closed after a 1xx, before the final response.
            ReadTimeout: nothing arrived within *timeout*.
            RemoteProtocolError: the server sent invalid HTTP.
        """
        early = self._early
        if early is not None:
            self._early = None
            self._informed = False
            return early
        core = self.core
        # Nothing arrived since the request went out and nothing waits unparsed: the
        # answer cannot be parsed yet, so wait before asking the parser.
        idle = not self.bytes_received and not core.buffered and not self._eof and not self._lost
        while True:
            # ``_next_event`` inlined: one coroutine fewer per response.
            if idle:
                idle = False
                event: Event | object = NEED_DATA
            else:
                event = core.next_event()
            if event is NEED_DATA:
                try:
                    await self._prepare_wait(timeout)
                finally:
                    self._waiter = None
                    self._timer.disarm()
                continue
            if type(event) is Response:
                self._informed = False  # (the next pipelined answer starts afresh)
                return event
            if not isinstance(event, Event):
                raise _paused()
            if type(event) is InformationalResponse:
                self._informed = True
                if on_informational is not None:
                    on_informational(event)
                continue
            if type(event) is ConnectionClosed:
                raise self._closed_unanswered()
            raise ServerDisconnected(f"unexpected event {event!r}")  # pragma: no cover

    def _closed_unanswered(self) -> ServerDisconnected:
        """The core read EOF where this request's response should begin.

        The core reports ``ConnectionClosed`` only between messages (EOF inside a
        head is ``IncompleteMessage``), so no byte of this response arrived: that
        is :class:`ClosedBeforeResponse`, unless a 1xx for it came first (the
        server began to act on it).
        """
        text = "server closed the connection without answering"
        exc = self._lost_exc
        if isinstance(exc, ConnectionResetError):
            text = "connection reset by the server before it answered"
        if exc is not None:
            text += f" ({exc})"
        if self._informed:
            return ServerDisconnected(text + " after an interim (1xx) response")
        return ClosedBeforeResponse(text)

    async def read_chunk(self, timeout: float | None) -> bytes | None:
        """Return the next piece of the response body, or None at its end.

        Raises:
            ReadTimeout, RemoteProtocolError (``IncompleteMessage`` when the
            server closed mid-body, RFC 9112 §8).
        """
        event = await self._next_event(timeout)
        if type(event) is Data:
            return event.data
        if type(event) is EndOfMessage:
            return None
        raise ServerDisconnected(f"unexpected event {event!r}")  # pragma: no cover

    async def read_body_event(self, timeout: float | None) -> bytes | EndOfMessage:
        """Return the next piece of the response body, or its end with the trailer fields.

        Like :meth:`read_chunk`, but the end is the :class:`EndOfMessage` itself,
        so a proxy can forward trailer fields (RFC 9110 §6.5, RFC 9112 §7.1.2)
        that :meth:`read_chunk` drops.

        Raises:
            ReadTimeout, RemoteProtocolError (``IncompleteMessage`` when the
            server closed mid-body, RFC 9112 §8).
        """
        return self._body_event(await self._next_event(timeout))

    def read_body_event_nowait(self) -> bytes | EndOfMessage | None:
        """What :meth:`read_body_event` would return without waiting; None if it must wait.

        Lets a relay gather everything already received (head, body, end) into
        one write instead of one system call per piece.

        Raises:
            RemoteProtocolError: as :meth:`read_body_event`.
        """
        event = self.core.next_event()
        if event is NEED_DATA:
            return None
        return self._body_event(event)

    async def wait_data(self, timeout: float | None) -> None:
        """Wait until more bytes (or EOF, or loss) arrive, for a caller that reads ``core``
        itself (as a relay does, gathering several events into one write).

        Raises:
            ReadTimeout: nothing arrived within *timeout*.
        """
        try:
            await self._prepare_wait(timeout)
        finally:
            self._waiter = None
            self._timer.disarm()

    @staticmethod
    def _body_event(event: object) -> bytes | EndOfMessage:
        if type(event) is Data:
            return event.data
        if type(event) is EndOfMessage:
            return event
        raise ServerDisconnected(f"unexpected event {event!r}")  # pragma: no cover

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


def _paused() -> ServerDisconnected:
    # PAUSED: an earlier response on this connection ended it (``close``,
    # RFC 9112 §9.6), so a pipelined request behind it gets no answer here: no byte
    # of its response came (RFC 9112 §9.3.2 lets an idempotent one be resent).
    return ClosedBeforeResponse("the server answered an earlier request with Connection: close")


def _expire(fut: asyncio.Future[None], exc: type[Exception]) -> None:
    if not fut.done():
        fut.set_exception(exc("timed out"))
