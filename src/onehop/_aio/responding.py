"""The answering half of the serving endpoint: responses, keep-or-close, errors, closing.

:class:`Responder` is the base of :class:`~onehop._aio.endpoint.ServerEndpoint`, which
adds the reading half (transport callbacks, the event pump, starting handlers). This
half holds the connection's state and what a handler calls to answer: the response's
connection part (``close`` when the connection ends after it, the ``Keep-Alive``
hint), :meth:`Responder.finish` (the one keep-or-close decision after a response),
the error answer from a core error's ``status_hint`` with ``Date`` and ``close``,
the switch to a tunnel after a ``101`` or a ``CONNECT`` 2xx, the one timer and its
named :class:`Deadline`, graceful shutdown, and lingering close (RFC 9112 §9.6). The
connection's :class:`Mode` is explicit.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any, Final

from onehop._aio.flow import FlowControl
from onehop._aio.handlers import CLOSE, RequestHandler, TunnelReceiver, error_response
from onehop._aio.serving import ServingState
from onehop._aio.timer import LazyTimer
from onehop.core import (
    WRITER_OWNED_FIELDS,
    Connection,
    ConnectionInfo,
    Data,
    EndOfMessage,
    InformationalResponse,
    Role,
    State,
)
from onehop.core.headers import NO_CONNECTION_INFO
from onehop.errors import LocalProtocolError, RemoteProtocolError

#: Rejected and failed requests: one line each, with the cause (``onehop.error``).
error_log: Final = logging.getLogger("onehop.error")


class Mode(enum.Enum):
    """Where a server-role connection is."""

    #: nothing received yet on a cleartext connection that may speak HTTP/2: the first
    #: bytes say which (the idle timer runs)
    NEW = "new"
    IDLE = "idle"  #: between requests; the idle timer runs
    HEAD = "head"  #: part of a request head arrived; the header timer runs
    EXCHANGE = "exchange"  #: a request is being answered (by the handler)
    TUNNEL = "tunnel"  #: switched protocols: bytes go to the receiver
    HTTP2 = "http2"  #: the connection speaks HTTP/2: bytes go to its Http2Connection
    LINGER = "linger"  #: our side is shut; the client's input is discarded for a while
    CLOSED = "closed"


class Deadline(enum.Enum):
    """What the one timer is timing."""

    NONE = "none"
    IDLE = "idle"  #: keep-alive: no request for ``idle_timeout``
    HEADER = "header"  #: a head started ``header_timeout`` ago
    BODY = "body"  #: no piece of a request body being read for ``body_timeout``


_IDLE: Final = Mode.IDLE
_HEAD: Final = Mode.HEAD
_EXCHANGE: Final = Mode.EXCHANGE
_TUNNEL: Final = Mode.TUNNEL
_HTTP2: Final = Mode.HTTP2
_NO_DEADLINE: Final = Deadline.NONE
_BODY_DEADLINE: Final = Deadline.BODY

#: After an early answer, a request body rest up to this size is read and discarded, so
#: the connection persists; past it (or of unknown size) the connection closes instead.
DRAIN_LIMIT: Final = 256 * 1024
_END: Final = EndOfMessage()
#: Hop-by-hop fields a handler may not send in a response's connection part: the
#: core writes Connection and framing itself, and Keep-Alive is the endpoint's.
_OWNED_FIELDS: Final = WRITER_OWNED_FIELDS | {b"keep-alive"}


def address_of(value: Any) -> tuple[str, int] | None:
    """A socket address as ``(host, port)`` (None for a Unix socket's or none)."""
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


class Responder(asyncio.Protocol):
    """The answering half of a :class:`~onehop._aio.endpoint.ServerEndpoint`; see the
    module docstring. The subclass reads: it parses requests and starts handlers.

    Owns: ``transport``, ``core``, ``flow``, the timer (``_timer``, timing
    ``_deadline``), ``current`` (the handler of the request being answered, or
    whose body is still arriving after its response) and ``mode``. The
    handler writes through ``core.send`` (the response's connection part from
    :meth:`response_connection`) and :meth:`write`, ends with :meth:`finish`,
    and may call :meth:`send_error`, :meth:`informational`, :meth:`switch` and
    :meth:`abort` (reading is paused and resumed on the subclass).
    """

    __slots__ = (
        "_deadline",
        "_parsing",
        "_timer",
        "body_complete",
        "client_addr",
        "config",
        "core",
        "current",
        "eof",
        "flow",
        "loop",
        "mode",
        "read_paused",
        "request_version",
        "requests",
        "response_complete",
        "scheme",
        "server_addr",
        "state",
        "transport",
        "tunnel",
    )

    def __init__(self, state: ServingState) -> None:
        config = self.config = state.config
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.core = Connection(
            Role.SERVER,
            limits=config.limits,
            intermediary=config.intermediary,
            keep_alive=config.keep_alive,
            http10_keep_alive=config.http10_keep_alive,
        )
        self.transport: asyncio.Transport | None = None
        self.flow = FlowControl()
        self.mode = _IDLE
        #: Received bytes go to the core (IDLE, HEAD, EXCHANGE), not a tunnel or the void.
        self._parsing = True
        self.current: RequestHandler | None = None
        self.tunnel: TunnelReceiver | None = None
        self.server_addr: tuple[str, int] | None = None
        self.client_addr: tuple[str, int] | None = None
        #: ``https`` when the connection is TLS (the transport has an SSL object), else ``http``.
        self.scheme = "http"
        self.requests = 0
        self.request_version = b"1.1"
        self.read_paused = False
        self.eof = False
        self.body_complete = True
        self.response_complete = True
        # One lazily re-armed timer serves every deadline (``_deadline`` says which), so a
        # keep-alive request costs no timer churn.
        self._timer = LazyTimer(self.loop, self._timer_fired)
        self._deadline = _NO_DEADLINE

    def write_eof(self) -> None:
        """Half-close a tunnel: no more bytes from our side (TCP FIN)."""
        transport = self.transport
        if transport is not None and self.mode is _TUNNEL and transport.can_write_eof():
            transport.write_eof()

    # --- responding ---------------------------------------------------------------------------

    def response_connection(self, conn: ConnectionInfo = NO_CONNECTION_INFO, *,
                            body_unwanted: bool = False) -> ConnectionInfo:
        """The connection part for the response being started, from the handler's own
        (*conn*: connection-specific fields it wants sent, say ``Upgrade``).

        The endpoint adds ``close`` when this connection ends after the response:
        its request limit, shutdown (RFC 9112 §9.6), or, with *body_unwanted* (the
        handler will not read the rest of the request body), a rest too long to
        read and discard (:meth:`_drops_rest`). It adds the ``Keep-Alive`` hint
        when configured (RFC 7230 §A.1.2). ``Connection`` and framing fields are
        the core's, ``Keep-Alive`` the endpoint's: the handler's are dropped.
        """
        config = self.config
        limit = config.max_requests_per_connection
        close = self.state.shutting_down or (limit is not None and self.requests >= limit) or (
            body_unwanted and self._drops_rest())
        mode = config.keep_alive_header
        if close or mode == "never" or (mode == "http10" and self.request_version != b"1.0"):
            if not close and conn is NO_CONNECTION_INFO:
                return conn
            ka = None
        else:
            ka = config.keep_alive_hint(self.requests)
        if conn is NO_CONNECTION_INFO:
            # Shared, known-valid parts: the core serializes each once.
            return CLOSE if ka is None else ka
        options = set(conn.options)
        options.discard(b"keep-alive")
        if close:
            options.add(b"close")
        fields = [(f[1], f[2]) for f in conn.fields.fields if f[0] not in _OWNED_FIELDS]
        if ka is not None:
            fields += ka.fields.raw()
        return ConnectionInfo(options=options, fields=fields)

    def write(self, data: bytes) -> None:
        """Hand bytes to the transport (nothing once the connection is closing)."""
        transport = self.transport
        if transport is not None and data and not transport.is_closing():
            transport.write(data)

    def informational(self, response: InformationalResponse) -> None:
        """Write a 1xx response now (``100 Continue``, ``103 Early Hints``, a relayed one).

        Raises:
            LocalProtocolError: not allowed now (an HTTP/1.0 client, RFC 9110 §15.2).
        """
        self.write(self.core.send(response))

    def finish(self, data: bytes = b"") -> None:
        """Write the response's last bytes (*data*, from ``core.send``); then keep the
        connection for the next request or close it: the one keep-or-close decision."""
        if data:
            transport = self.transport
            if transport is not None:
                transport.write(data)
        if self.response_complete:
            return
        self.response_complete = True
        self.state.active -= 1
        if self.core.must_close or self.state.shutting_down:
            self.close()
            return
        if self.body_complete:
            self._next()
        elif self._drops_rest():
            self.close()
        # else: the short rest of the body is read and discarded; its end goes on.

    def _drops_rest(self) -> bool:
        """After an answer that came before the request body ended: whether the rest is
        not worth reading. A short rest is read and discarded (the connection goes on
        after it); a long or unknown one is not: the connection closes, lingering so
        the client still reads the answer (RFC 9112 §9.6; Go's server draws the line at
        256 KiB too)."""
        if self.body_complete:
            return False
        left = self.core.body_left
        return left is None or left > DRAIN_LIMIT

    def _next(self) -> None:
        """The exchange is over: wait for the next request (the reading subclass's)."""
        raise NotImplementedError

    @property
    def response_started(self) -> bool:
        """Whether the current response's head went out (the core writes its body now)."""
        return self.core.our_state is State.BODY

    def send_error(self, status: int, text: str, *, close: bool = True,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Answer the current request (or the unparsable one) with *status*, a short text,
        ``Date`` and ``close``, then close with lingering; with *close* False (a
        handler's own error answer, say a proxy's 502), the connection part is the
        usual one and the connection may persist. If a response already started, cut
        the connection instead (the only honest signal left, RFC 9112 §8)."""
        if self.response_started:
            self._drop_current()
            self.abort()
            return
        if not close:
            response, body = error_response(
                status, text, self.response_connection(body_unwanted=True), headers)
            core = self.core
            try:
                data = core.send(response) + core.send(Data(body)) + core.send(_END)
            except LocalProtocolError:
                self.abort()
                return
            self.finish(data)
            return
        in_exchange = self.mode is _EXCHANGE and not self.response_complete
        current = self.current
        if current is not None and in_exchange:
            self.current = None
            current.on_lost()  # the request is abandoned: its handler stops
        response, body = error_response(status, text, None, headers)
        try:
            data = self.core.send(response) + self.core.send(Data(body))
            data += self.core.send(_END)
        except LocalProtocolError:  # the core refused: nothing sensible left to say
            self.abort()
            return
        self.write(data)
        if in_exchange:
            self.response_complete = True
            self.state.active -= 1
        self.close()

    # --- tunnels ------------------------------------------------------------------------------

    def switch(self, receiver: TunnelReceiver) -> None:
        """After a ``101`` or ``CONNECT`` 2xx was written: every byte from now on goes to
        *receiver*, beginning with any that arrived after the request."""
        data, eof = self.core.trailing_data
        self.mode = _TUNNEL
        self._parsing = False
        self.tunnel = receiver
        self.current = None
        if not self.response_complete:
            self.response_complete = True
            self.state.active -= 1
        self._disarm()
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()
        if data:
            receiver.data_received(data)
        if eof or self.eof:
            receiver.eof_received()

    # --- timers and closing -------------------------------------------------------------------

    def _arm(self, deadline: Deadline, delay: float) -> None:
        self._deadline = deadline
        self._timer.arm(delay)

    def _disarm(self) -> None:
        # Lazy: the pending handle fires as a no-op (cheaper than cancel + re-arm per request).
        self._deadline = _NO_DEADLINE
        self._timer.disarm()

    def _timer_fired(self) -> None:
        deadline, self._deadline = self._deadline, _NO_DEADLINE
        mode = self.mode
        if deadline is _NO_DEADLINE or mode is Mode.CLOSED or mode is Mode.LINGER:
            return
        if deadline is _BODY_DEADLINE:
            if mode is not _EXCHANGE or self.body_complete:
                return
            error_log.info("%s: 408 request body stalled for %g s", self._peer(),
                           self.config.body_timeout or 0)
            if not self.response_started and not self.response_complete:
                self.send_error(408, "Request Timeout: the request body took too long")
            elif self.response_complete:
                self.close()  # the answer is out; stop waiting for the rest of the body
            else:
                self._drop_current()
                self.abort()
            return
        if mode is _EXCHANGE:
            return
        if deadline is Deadline.HEADER and self.core.buffered:
            error_log.info("%s: 408 request head not complete after %g s", self._peer(),
                           self.config.header_timeout)
            self.send_error(408, "Request Timeout: the request head took too long")
        else:
            self.close()

    def shutdown(self) -> None:
        """Graceful shutdown: an idle connection closes now; a busy one after its response
        (which then carries ``close``)."""
        mode = self.mode
        if mode is _IDLE or mode is _HEAD or mode is Mode.NEW:
            self.close()
        elif (mode is _TUNNEL or mode is _HTTP2) and self.tunnel is not None:
            # (A WebSocket says goodbye; a proxy tunnel lasts; HTTP/2 sends GOAWAY and
            # lets its open streams finish, RFC 9113 §6.8.)
            self.tunnel.shutdown()

    def close(self) -> None:
        """End the connection; linger when the client may still be sending (RFC 9112 §9.6)."""
        mode = self.mode
        transport = self.transport
        if mode is Mode.LINGER or mode is Mode.CLOSED or transport is None:
            return
        if mode is _HTTP2:
            # A GOAWAY went out first: linger too, or a client still sending (a rapid-reset
            # attacker, a busy multiplexer) gets a reset that can drop the GOAWAY unread.
            if self.eof or not transport.can_write_eof():
                self.mode = Mode.CLOSED
                transport.close()
            else:
                self._linger(transport)
            return
        if mode is _TUNNEL:  # (the tunnel passes half-closes on itself)
            self.mode = Mode.CLOSED
            transport.close()
            return
        self._timer.cancel()
        self._deadline = _NO_DEADLINE
        if not self.body_complete:
            self._read_ready_body()
        unread = self.core.buffered or not self.body_complete
        self._parsing = False
        if self.eof or not unread or not transport.can_write_eof():
            self.mode = Mode.CLOSED
            self._drop_current()
            transport.close()
            return
        self._linger(transport)

    def _linger(self, transport: asyncio.Transport) -> None:
        """Shut our write side so the client reads all we wrote, then discard its input
        for a bounded time (``linger_timeout``) instead of resetting the connection."""
        self.mode = Mode.LINGER
        self._drop_current()
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        transport.write_eof()
        self.loop.call_later(self.config.linger_timeout, transport.close)

    def _read_ready_body(self) -> None:
        """Discard the request body events the core already holds: a request whose body
        is all here (or that has none) leaves nothing unread, so no lingering is needed."""
        core = self.core
        while True:
            try:
                event = core.next_event()
            except RemoteProtocolError:
                return
            if type(event) is EndOfMessage:
                self.body_complete = True
                return
            if type(event) is not Data:
                return

    def abort(self) -> None:
        """Cut the connection at once (a failure mid-response, or the grace period is over)."""
        self.mode = Mode.CLOSED
        self._parsing = False
        self._timer.cancel()
        self._deadline = _NO_DEADLINE
        self._drop_current()
        if self.transport is not None:
            self.transport.abort()

    def _client_gone(self) -> None:
        """The client closed inside a message: nothing to answer; stop the handler."""
        self._drop_current()
        self.abort()

    def _drop_current(self) -> None:
        current = self.current
        if current is not None:
            self.current = None
            if not self.response_complete:
                self.response_complete = True
                self.state.active -= 1
            current.on_lost()

    def _peer(self) -> str:
        addr = self.client_addr
        return f"{addr[0]}:{addr[1]}" if addr else "-"
