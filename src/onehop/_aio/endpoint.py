"""The one server-role driver: a transport, a core connection and the rules around them.

:class:`ServerEndpoint` is the ``asyncio.Protocol`` of every connection a server or
proxy accepts (Go's ``conn.serve``, hyper's ``Dispatcher``). It owns the core
:class:`~onehop.core.Connection` (requests answered one at a time, in order: RFC
9112 §9.3.2), read and write flow control (no new request while the client does not
read its answers), one timer with a named :class:`Deadline` (idle keep-alive; the
header timeout, armed once per head so a client dripping bytes gets 408; the body
timeout), the error answer from a core error's ``status_hint`` with ``Date`` and
``close``, the 503 overload answer, the response's connection part (``close`` when
the connection ends after it, the ``Keep-Alive`` hint), the one keep-or-close
decision after a response (:meth:`ServerEndpoint.finish`), lingering close (RFC 9112
§9.6), graceful shutdown, and tunnel mode after a ``101`` or a ``CONNECT`` 2xx.

HTTP/2 is a second protocol on the same endpoint, not a second server: the client
connection preface as the first bytes of a cleartext connection (prior knowledge,
RFC 9113 §3.3), or ALPN ``h2`` on TLS, puts the endpoint in its ``HTTP2`` mode,
where an :class:`~onehop._aio.http2.Http2Connection` takes its bytes and runs each
stream through the same handler factory. Telling them apart costs HTTP/1.x one
comparison on the first read of a connection, and nothing after.

The answering half (the response's connection part, ``finish``, error answers, tunnels,
the timer, shutdown and lingering close) is the base class,
:class:`~onehop._aio.responding.Responder`; this module reads.

What answers requests is a handler (:mod:`onehop._aio.handlers`) called through
plain callbacks, never coroutines, so one that can answer from the event loop (the
proxy's warm exchange) pays for no task: the ASGI server, the proxy and the demo
origin are handlers. Everything runs on the loop's thread: no locks. The mode is an
explicit :class:`Mode`.
"""

from __future__ import annotations

import asyncio
from typing import Final

from onehop._aio import http2
from onehop._aio.h2fields import PREFACE
from onehop._aio.handlers import ANSWERED, Endpoint, HandlerFactory, RequestHandler
from onehop._aio.responding import Deadline, Mode, Responder, address_of, error_log
from onehop._aio.serving import ServingState
from onehop.core import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    reason_phrase,
)
from onehop.errors import IncompleteMessage, RemoteProtocolError

# (Module constants: a global read is cheaper than an attribute of an enum class.)
_IDLE: Final = Mode.IDLE
_HEAD: Final = Mode.HEAD
_EXCHANGE: Final = Mode.EXCHANGE
_TUNNEL: Final = Mode.TUNNEL
_HTTP2: Final = Mode.HTTP2
_NEW: Final = Mode.NEW
_PREFACE: Final = PREFACE
_NO_DEADLINE: Final = Deadline.NONE
_IDLE_DEADLINE: Final = Deadline.IDLE
_BODY_DEADLINE: Final = Deadline.BODY


class ServerEndpoint(Responder):
    """The server side of one connection (RFC 9112 §9); see the module docstring.

    Owns (with what :class:`~onehop._aio.responding.Responder` holds): ``handler`` (the
    connection's, from ``factory``), which makes a request handler per request. The
    handler writes through ``core.send`` (the response's connection part from
    :meth:`response_connection`) and :meth:`write`, ends with :meth:`finish`,
    and may call :meth:`send_error`, :meth:`informational`, :meth:`pause_reading`,
    :meth:`resume_reading`, :meth:`switch` and :meth:`abort`.
    """

    __slots__ = ("_pumping", "_sniffed", "factory", "handler")

    def __init__(self, state: ServingState, factory: HandlerFactory) -> None:
        super().__init__(state)
        self._pumping = False
        #: The first bytes of a cleartext connection, while they may still be the
        #: start of the HTTP/2 preface (rarely more than one read).
        self._sniffed = b""
        self.factory = factory
        self.handler = factory(self)

    # --- transport callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.state.connections.add(self)
        self.server_addr = address_of(transport.get_extra_info("sockname"))
        self.client_addr = address_of(transport.get_extra_info("peername"))
        ssl_object = transport.get_extra_info("ssl_object")
        if self.state.shutting_down:
            transport.close()
            return
        config = self.config
        if ssl_object is not None:
            self.scheme = "https"
            if config.speaks_http2 and ssl_object.selected_alpn_protocol() == "h2":
                self._start_http2(b"")  # (ALPN chose it, RFC 9113 §3.2)
                return
            if not config.speaks_http1:
                self.handler = _Http2Only()
        elif config.speaks_http2:
            # Cleartext: HTTP/2 only by prior knowledge (RFC 9113 §3.3): the first bytes say.
            self.mode = Mode.NEW
            self._parsing = False
        self._arm(Deadline.IDLE, config.idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self._timer.cancel()
        self._deadline = _NO_DEADLINE
        mode = self.mode
        self.mode = Mode.CLOSED
        self._parsing = False
        self.flow.close()
        self.handler.on_closed()
        if (mode is _TUNNEL or mode is _HTTP2) and self.tunnel is not None:
            self.tunnel.connection_lost(exc)
            return
        self._drop_current()

    def data_received(self, data: bytes) -> None:
        if self._parsing:
            self.core.receive_data(data)
            self._pump()
            return
        mode = self.mode
        if mode is _TUNNEL or mode is _HTTP2:
            assert self.tunnel is not None
            self.tunnel.data_received(data)
        elif mode is _NEW:
            self._first_bytes(data)
        # LINGER: RFC 9112 §9.6: read and discard until the client sees our close.

    def _first_bytes(self, data: bytes) -> None:
        """The first bytes of a cleartext connection: the HTTP/2 client preface (RFC 9113
        §3.4), or HTTP/1.x. Bytes that may still become the preface wait for more."""
        if self._sniffed:
            data = self._sniffed + data
            self._sniffed = b""
        if data[:1] == b"P":  # (the one comparison an HTTP/1.x request pays, but a POST)
            if data.startswith(_PREFACE):
                self._start_http2(data)
                return
            if len(data) < 24 and _PREFACE.startswith(data):
                self._sniffed = data
                return
        self.mode = _IDLE
        self._parsing = True
        if not self.config.speaks_http1:
            self.handler = _Http2Only()
        self.core.receive_data(data)
        self._pump()

    def _start_http2(self, data: bytes) -> None:
        """Speak HTTP/2 from now on: an :class:`~onehop._aio.http2.Http2Connection` takes
        every byte (its own timers replace ours) and makes a handler per stream."""
        self._timer.cancel()
        self._deadline = _NO_DEADLINE
        self.mode = _HTTP2
        self._parsing = False
        self.tunnel = receiver = http2.Http2Connection(self, self.factory)
        if data:
            receiver.data_received(data)

    def eof_received(self) -> bool | None:
        self.eof = True
        mode = self.mode
        if mode is _TUNNEL or mode is _HTTP2:
            assert self.tunnel is not None
            return self.tunnel.eof_received()
        if mode is Mode.LINGER or mode is Mode.CLOSED or mode is Mode.NEW:
            return False
        self.core.receive_data(b"")
        self._pump()
        if (self.config.half_close_abandons and self.mode is _EXCHANGE and self.body_complete
                and not self.response_complete):
            # The client shut its side while its answer is awaited: gone, as nginx counts
            # it (499, ``proxy_ignore_client_abort off``); the handler stops.
            self._drop_current()
            self.close()
            return False
        # Keep our write side open while a response is still owed.
        current = self.current
        if current is None or self.mode is not _EXCHANGE:
            return False
        current.on_eof()
        return True

    def pause_writing(self) -> None:
        self.flow.pause_writing()
        if (self.mode is _TUNNEL or self.mode is _HTTP2) and self.tunnel is not None:
            self.tunnel.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        if self.mode is _TUNNEL or self.mode is _HTTP2:
            if self.tunnel is not None:
                self.tunnel.resume_writing()
            return
        current = self.current
        if current is not None and not self.response_complete:
            current.on_writable()
        elif self._parsing:
            self._pump()  # the next request may have waited for the client to read

    # --- reading ------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Pull events from the core until it needs bytes or waits on our response.

        A call made while the loop runs (a handler answering at once from inside a
        callback this loop made) returns at once: the running loop looks again.
        """
        if self._pumping or self.read_paused:
            return
        self._pumping = True
        try:
            self._pump_events()
        except Exception:  # a handler's bug must cost its connection only
            error_log.exception("%s: request handler failed", self._peer())
            if self.mode is _EXCHANGE and not self.response_started:
                self.send_error(500, "Internal Server Error")
            else:
                self.abort()
        finally:
            self._pumping = False

    def _pump_events(self) -> None:
        core = self.core
        flow = self.flow
        while self._parsing:
            if flow.write_paused and self.current is None:
                # The client is not reading its answers: take no new request until
                # it does (``resume_writing`` pumps), so a pipelining client cannot
                # make us buffer every answer.
                return
            try:
                event = core.next_event()
            except IncompleteMessage:
                self._client_gone()
                return
            except RemoteProtocolError as exc:
                error_log.info("%s: %d %s", self._peer(), exc.status_hint, exc.msg)
                self.send_error(exc.status_hint,
                                f"{reason_phrase(exc.status_hint).decode()}: {exc.msg}")
                return
            kind = type(event)
            if kind is Data:
                current = self.current
                if current is not None and not self.response_complete:
                    current.on_body(event.data)  # type: ignore[union-attr]
                    if self.read_paused:
                        return
                # else: the answer is out (or was refused): the rest is discarded.
            elif kind is EndOfMessage:
                self.body_complete = True
                if self._deadline is _BODY_DEADLINE:
                    self._disarm()
                if self.response_complete:
                    self._next()  # the body outlived its response: go on
                else:
                    current = self.current
                    if current is not None:
                        current.on_end(event.trailers)  # type: ignore[union-attr]
            elif kind is Request:
                self._start(event)  # type: ignore[arg-type]
            elif event is NEED_DATA:
                mode = self.mode
                if mode is _EXCHANGE:
                    if not self.body_complete and self.config.body_timeout is not None:
                        # (restarted by every piece that arrives)
                        self._arm(_BODY_DEADLINE, self.config.body_timeout)
                elif mode is _IDLE and core.buffered:
                    self.mode = _HEAD  # armed once per head, not once per piece
                    self._arm(Deadline.HEADER, self.config.header_timeout)
                return
            elif event is PAUSED:
                if core.must_close:
                    if self.current is None:
                        self.close()
                elif core.buffered > self.config.read_high_water:
                    self._pause()
                return
            elif kind is ConnectionClosed:
                if self.current is None:
                    self.close()
                return
            else:  # pragma: no cover - the core yields nothing else to a server
                return

    def _start(self, request: Request) -> None:
        # (No timer call: a deadline of NONE makes the pending handle lapse, see _timer_fired.)
        self._deadline = _NO_DEADLINE
        self.mode = _EXCHANGE
        self.requests += 1
        self.request_version = request.http_version
        self.body_complete = False
        self.response_complete = False
        if not self.state.admit():
            self.current = None
            error_log.warning("%s: 503 over the concurrency limit (%d)", self._peer(),
                              self.config.limit_concurrency or 0)
            self.send_error(503, "Service Unavailable")
            return
        handler = self.handler.on_request(self, request)
        if not self.response_complete:  # (else it answered at once; nothing to track)
            self.current = handler

    def pause_reading(self) -> None:
        """Stop reading the client (a handler that cannot take more body now)."""
        if self._deadline is _BODY_DEADLINE:
            self._disarm()  # the handler is slow, not the client
        self._pause()

    def _pause(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Let bytes flow again, and hand on events the core may already hold."""
        if not self.read_paused or self.transport is None:
            return
        if self._parsing:
            self.read_paused = False
            self.transport.resume_reading()
            # Events may already be parsed-ready (the body's end arrived with the
            # chunk that made us pause): no new bytes would ever pull them out.
            self._pump()
        elif self.mode is _TUNNEL:
            self.read_paused = False
            self.transport.resume_reading()

    def _next(self) -> None:
        """The exchange is over: wait for the next request (or parse it, if buffered)."""
        self.current = None
        self.mode = _IDLE
        self._deadline = _IDLE_DEADLINE
        self._timer.arm(self.config.idle_timeout)
        if self.read_paused:
            self.resume_reading()  # also pulls the next pipelined request
        elif self.core.buffered or self.eof:
            self._pump()
        # else: nothing buffered and nothing owed: the next bytes drive the core.


class _Http2Only:
    """The handler of an HTTP/1.x connection to a listener that speaks HTTP/2 only
    (``http = "h2"``): every request gets ``505 HTTP Version Not Supported`` (RFC 9110
    §15.6.6) and the connection closes."""

    __slots__ = ()

    def on_request(self, endpoint: Endpoint, request: Request) -> RequestHandler:
        endpoint.send_error(505, "HTTP Version Not Supported: this server speaks HTTP/2 only "
                                 "(prior knowledge on cleartext, ALPN h2 on TLS)")
        return ANSWERED

    def on_closed(self) -> None:
        pass
