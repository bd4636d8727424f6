"""One HTTP/2 request stream, and the adapter that frames its handler's answer.

A :class:`Stream` is the :class:`~onehop._aio.handlers.Endpoint` a handler answers
on, exactly as it answers on an HTTP/1 connection: the ASGI server and the proxy
run unchanged over HTTP/2. Its ``core`` is a :class:`StreamCore`, whose ``send``
takes the HTTP/1 core's events and queues HEADERS and DATA frames on the
connection instead of returning bytes (header blocks share one HPACK state and
must reach the wire in the order they were encoded; see
:mod:`onehop._aio.http2`, which owns the connection, its ``h2`` state machine,
its buffer and its timers).

The two classes live together because each holds the other (a stream its
``core``, the core its ``stream``); what they use of their connection is the
:class:`Multiplexer` protocol, so this module never imports the connection's.

Everything runs on the loop's thread: no locks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import TYPE_CHECKING, Final, Protocol

from onehop._aio.flow import FlowControl
from onehop._aio.h2fields import (
    MalformedFields,
    drop_connection_specific,
    outbound_fields,
    trailers_from_fields,
)
from onehop._aio.handlers import error_response
from onehop._aio.timer import LazyTimer
from onehop.core import (
    ConnectionInfo,
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    Response,
)
from onehop.core.headers import EMPTY_HEADERS, NO_CONNECTION_INFO
from onehop.errors import FramingMismatch, InvalidMessageToSend, InvalidSendState

try:
    from h2.errors import ErrorCodes
    from h2.exceptions import H2Error
except ImportError:  # pragma: no cover - h2 is a dependency; a stripped install lacks it
    pass  # (ServingConfig turns HTTP/2 off then: no stream is ever made)

if TYPE_CHECKING:
    from h2.connection import H2Connection

    from onehop._aio.handlers import ConnectionHandler, RequestHandler, TunnelReceiver
    from onehop._aio.serving import ServingConfig, ServingState

error_log: Final = logging.getLogger("onehop.error")

#: A stream's output waiting (for the peer's window, the transport or the next flush)
#: past this many bytes pauses its writer; below ``LOW_WATER`` it resumes (the
#: transport's own marks, per stream).
HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024

_END: Final = EndOfMessage()
_NO_BODY_STATUS: Final = frozenset({204, 304})


class Peer(Protocol):
    """Where a stream's connection runs: the addresses and scheme its handler sees."""

    client_addr: tuple[str, int] | None
    server_addr: tuple[str, int] | None
    scheme: str


class Multiplexer(Protocol):
    """What a stream uses of its connection (an :class:`~onehop._aio.http2.Http2Connection`):
    the ``h2`` state machine, the listener's rules and books, and the shared output."""

    loop: asyncio.AbstractEventLoop
    h2: H2Connection
    config: ServingConfig
    state: ServingState
    #: The transport's buffer is full: every stream's writer waits.
    transport_paused: bool

    @property
    def owner(self) -> Peer: ...

    def want_flush(self, stream: Stream | None = None) -> None: ...

    def stream_closed(self, stream: Stream) -> None: ...

    def peer(self) -> str: ...


class Stream:
    """One request stream: the :class:`~onehop._aio.handlers.Endpoint` its handler answers on.

    Owned by its connection (:class:`~onehop._aio.http2.Http2Connection`). ``core``
    turns the handler's events into frames (:class:`StreamCore`); ``write`` queues
    content (a tunnel's bytes), and ``finish`` ends the answer. Request content goes
    to ``handler`` as it arrives,
    and is acknowledged to the peer (its flow-control window reopened) only as the
    handler takes it: a paused handler holds the client back by the window alone
    (RFC 9113 §5.2), with no transport pause that would stall the other streams.
    """

    __slots__ = ("_body_timer", "body_complete", "client_addr", "complete", "conn",
                 "connection_handler", "core", "counted", "ended", "flow", "handler", "inbox",
                 "loop", "read_paused", "received", "scheme", "server_addr", "sid", "trailers",
                 "tunnel")

    def __init__(self, conn: Multiplexer, sid: int, method: bytes) -> None:
        owner = conn.owner
        self.conn = conn
        self.sid = sid
        self.loop = conn.loop
        self.client_addr = owner.client_addr
        self.server_addr = owner.server_addr
        self.scheme = owner.scheme
        self.flow = FlowControl()
        self.core = StreamCore(self, method == b"HEAD")
        self.handler: RequestHandler | None = None
        #: What the endpoint's factory made for this stream (told when the stream is over).
        self.connection_handler: ConnectionHandler | None = None
        self.tunnel: TunnelReceiver | None = None
        #: The request's content is all here (END_STREAM received).
        self.body_complete = False
        #: The handler finished its answer (the frames may still wait for the window).
        self.complete = False
        #: END_STREAM (or RST_STREAM) went out: nothing more to send.
        self.ended = False
        #: Admitted through the overload gate (counted in ``state.active`` until complete).
        self.counted = False
        self.read_paused = False
        #: Content (and the end, as None) received while the handler paused reading.
        self.inbox: collections.deque[tuple[bytes, int] | None] = collections.deque()
        self.received = 0
        self.trailers = EMPTY_HEADERS
        self._body_timer: LazyTimer | None = None

    # --- the request, from the connection -----------------------------------------------------

    def data_received(self, data: bytes, flow_length: int) -> None:
        tunnel = self.tunnel
        if tunnel is None:
            handler = self.handler
            if handler is None or self.complete:
                # Answered already (or refused): the rest is read and dropped.
                self.conn.h2.acknowledge_received_data(flow_length, self.sid)
                return
            self.received += len(data)
            max_body = self.conn.config.limits.max_body_size
            if max_body is not None and self.received > max_body:
                self.conn.h2.acknowledge_received_data(flow_length, self.sid)
                self.send_error(413, f"Content Too Large: the request body is over {max_body} "
                                     "bytes")
                return
        if self.read_paused:
            self.inbox.append((data, flow_length))  # (unacknowledged: the window shuts)
            return
        if self._body_timer is not None:
            self.arm_body_timer()
        self.conn.h2.acknowledge_received_data(flow_length, self.sid)
        if tunnel is not None:
            tunnel.data_received(data)
        elif self.handler is not None:
            self.handler.on_body(data)

    def trailers_received(self, fields: list[tuple[bytes, bytes]]) -> None:
        try:
            self.trailers = trailers_from_fields(fields)
        except MalformedFields as exc:
            error_log.info("%s: HTTP/2 stream %d: malformed trailers: %s", self.conn.peer(),
                           self.sid, exc)
            self._reset(ErrorCodes.PROTOCOL_ERROR)

    def request_ended(self) -> None:
        """END_STREAM from the client: the request's content is complete."""
        if self.body_complete:
            return
        self.body_complete = True
        if self._body_timer is not None:
            self._body_timer.cancel()
        tunnel = self.tunnel
        if self.read_paused:
            self.inbox.append(None)
        elif tunnel is not None:
            tunnel.eof_received()
        elif self.handler is not None and not self.complete:
            self.handler.on_end(self.trailers)
        if self.ended:
            self.conn.stream_closed(self)

    def arm_body_timer(self) -> None:
        """(Re)start the wait for the next piece of content (``body_timeout``)."""
        timeout = self.conn.config.body_timeout
        if timeout is None or self.body_complete:
            return
        timer = self._body_timer
        if timer is None:
            timer = self._body_timer = LazyTimer(self.loop, self._body_stalled)
        timer.arm(timeout)

    def _body_stalled(self) -> None:
        if self.body_complete or self.ended or self.read_paused or self.tunnel is not None:
            return
        error_log.info("%s: HTTP/2 stream %d: request body stalled for %g s",
                       self.conn.peer(), self.sid, self.conn.config.body_timeout or 0)
        self.send_error(408, "Request Timeout: the request body took too long")

    # --- the Endpoint protocol ----------------------------------------------------------------

    def response_connection(self, conn: ConnectionInfo = NO_CONNECTION_INFO, *,
                            body_unwanted: bool = False) -> ConnectionInfo:
        """The handler's own connection part, unchanged: HTTP/2 has no persistence to
        announce, and :func:`~onehop._aio.h2fields.outbound_fields` drops (and logs)
        every connection-specific field in it on the way out."""
        return conn

    def write(self, data: bytes) -> None:
        """Queue *data* as content of this stream (the core's frames are queued by
        ``core.send``, which returns no bytes; a tunnel writes its bytes here)."""
        if data:
            self.core.queue(data)

    def write_eof(self) -> None:
        """End a tunnel's output (END_STREAM)."""
        if self.tunnel is not None:
            self.core.end(EMPTY_HEADERS)

    def informational(self, response: InformationalResponse) -> None:
        """Send a 1xx response now (``100 Continue``, ``103 Early Hints``).

        Raises:
            LocalProtocolError: a ``101`` (RFC 9113 §8.6), or a final answer went out.
        """
        self.core.send(response)

    def finish(self, data: bytes = b"") -> None:
        """The answer is complete (its end queued by ``core.send``): count it done."""
        if data:
            self.core.queue(data)
        if self.complete:
            return
        self.complete = True
        if self.counted:
            self.counted = False
            self.conn.state.active -= 1
        if self._body_timer is not None:
            self._body_timer.cancel()
        if self.inbox:
            self._release_inbox()
        if not self.core.end_queued and not self.ended:
            # (A handler that finished without the end: the peer must not wait forever.)
            self._reset(ErrorCodes.INTERNAL_ERROR)

    def send_error(self, status: int, text: str, *, close: bool = True,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Answer with *status* and a short text; once the response started, reset the
        stream instead (the only honest signal left). With *close* the handler is told
        the request is abandoned, as on HTTP/1; the connection itself goes on, and a
        request body still arriving is stopped with RST_STREAM NO_ERROR (RFC 9113 §8.1)."""
        core = self.core
        if core.started or self.ended:
            self.abort()
            return
        handler = self.handler
        if close and handler is not None and not self.complete:
            self.handler = None
            handler.on_lost()
        response, body = error_response(status, text, NO_CONNECTION_INFO, headers)
        core.send(response)
        core.send(Data(body))
        core.send(_END)
        self.finish()

    def pause_reading(self) -> None:
        """Stop handing content to the handler; the peer's window closes behind it."""
        self.read_paused = True

    def resume_reading(self) -> None:
        """Hand on the content that waited, and reopen the window for it."""
        if not self.read_paused:
            return
        self.read_paused = False
        inbox = self.inbox
        conn = self.conn
        while inbox and not self.read_paused:
            item = inbox.popleft()
            handler, tunnel = self.handler, self.tunnel
            if item is None:
                if tunnel is not None:
                    tunnel.eof_received()
                elif handler is not None and not self.complete:
                    handler.on_end(self.trailers)
                break
            conn.h2.acknowledge_received_data(item[1], self.sid)
            if tunnel is not None:
                tunnel.data_received(item[0])
            elif handler is not None and not self.complete:
                handler.on_body(item[0])
        conn.want_flush()  # (the WINDOW_UPDATEs)
        if not self.read_paused and not self.body_complete and self._body_timer is not None:
            self.arm_body_timer()

    def switch(self, receiver: TunnelReceiver) -> None:
        """After a ``CONNECT`` 2xx (or an extended CONNECT's 200, RFC 8441): the stream's
        DATA both ways is the tunnel's (RFC 9113 §8.5); END_STREAM is its half-close."""
        self.tunnel = receiver
        self.handler = None
        if not self.complete:
            self.complete = True
            if self.counted:
                self.counted = False
                self.conn.state.active -= 1
        if self.read_paused:
            self.resume_reading()  # (what waited goes to the tunnel now)

    def abort(self) -> None:
        """Cut this stream (RST_STREAM INTERNAL_ERROR): a failure mid-response. What was
        written goes out first, as far as the peer's window allows, as written bytes do
        on a TCP connection cut after them (a WebSocket's close frame before its cut)."""
        if self.core.queued and not self.ended:
            self.core.push()
            self.conn.want_flush()
        self._reset(ErrorCodes.INTERNAL_ERROR)

    def close(self) -> None:
        """End this stream as closing a connection would. A tunnel's output ends
        (END_STREAM, after what it wrote) and its receiver is done: whatever the client
        still sends is refused with RST_STREAM NO_ERROR once the END_STREAM is out (RFC
        9113 §8.1), so a client that never ends its half (after a WebSocket's closing
        handshake, RFC 8441 §4) does not hold the stream. An unfinished answer is
        cancelled. (``write_eof`` is the half-close that keeps the client's half open.)"""
        if self.tunnel is not None and not self.ended:
            self.tunnel = None
            self.core.end(EMPTY_HEADERS)
            return
        if not self.ended:
            self._reset(ErrorCodes.CANCEL)

    # --- output, from the connection ----------------------------------------------------------

    def push(self) -> bool:
        """Frame queued output as the peer's window allows; True when nothing waits."""
        done = self.core.push()
        if self.flow.write_paused and self.core.queued <= LOW_WATER:
            self.transport_resumed()
        return done

    def transport_paused(self) -> None:
        if not self.ended:
            self.flow.pause_writing()
            if self.tunnel is not None:
                self.tunnel.pause_writing()

    def transport_resumed(self) -> None:
        if self.conn.transport_paused or self.core.queued > LOW_WATER or not (
                self.flow.write_paused):
            return
        self.flow.resume_writing()
        if self.tunnel is not None:
            self.tunnel.resume_writing()
        elif self.handler is not None and not self.complete:
            self.handler.on_writable()

    def sent_all(self) -> None:
        """END_STREAM went out."""
        self.ended = True
        self.flow.close()
        if not self.body_complete:
            # "A server can send a complete response prior to the client sending an entire
            # request ... [and] MAY request that the client abort transmission of a request
            # without error by sending a RST_STREAM with an error code of NO_ERROR after
            # sending a complete response" (RFC 9113 §8.1).
            self.body_complete = True
            if self.tunnel is None:
                with contextlib.suppress(H2Error):
                    self.conn.h2.reset_stream(self.sid, ErrorCodes.NO_ERROR)
            else:
                return  # (a tunnel's client half stays open until its END_STREAM)
        self.conn.stream_closed(self)

    def _reset(self, code: int) -> None:
        """RST_STREAM with *code*; the handler, if still answering, hears it is lost."""
        if not self.ended:
            with contextlib.suppress(H2Error):
                self.conn.h2.reset_stream(self.sid, code)
            self.conn.want_flush()
        self.lost(reset=True)

    def _release_inbox(self) -> None:
        """Reopen the connection's window for content that waited and is not wanted now."""
        h2 = self.conn.h2
        for item in self.inbox:
            if item is not None:
                h2.acknowledge_received_data(item[1], self.sid)
        self.inbox.clear()

    def lost(self, *, reset: bool, exc: Exception | None = None) -> None:
        """The stream is gone (reset by either side, or the connection ended)."""
        if not reset and not self.ended:
            error_log.debug("%s: HTTP/2 stream %d reset or cut", self.conn.peer(), self.sid)
        self.ended = self.body_complete = True
        self.flow.close()
        self.core.drop()
        if self.inbox:
            self._release_inbox()
        if self._body_timer is not None:
            self._body_timer.cancel()
        if self.counted:
            self.counted = False
            self.conn.state.active -= 1
        tunnel, self.tunnel = self.tunnel, None
        if tunnel is not None:
            tunnel.connection_lost(exc)
        handler, self.handler = self.handler, None
        if handler is not None and not self.complete:
            self.complete = True
            handler.on_lost()
        self.conn.stream_closed(self)


class StreamCore:
    """A stream's ``core``: the core's events in, HTTP/2 frames queued on the connection.

    ``send`` has the HTTP/1 core's contract (same events, same errors for a message out
    of order or a body longer than its ``Content-Length``) but returns ``b""``: the
    frames leave through the connection's buffer, in encoding order (see the module
    docstring). Heads and trailers go through
    :func:`~onehop._aio.h2fields.outbound_fields`: the one place where
    connection-specific fields are dropped for both the server and the proxy.
    """

    __slots__ = ("end_queued", "head", "length_left", "no_body", "outbox", "queued",
                 "started", "stream", "trailers")

    def __init__(self, stream: Stream, head: bool) -> None:
        self.stream = stream
        #: The request was HEAD: a response's content is not sent (RFC 9110 §9.3.2).
        self.head = head
        self.no_body = head
        self.started = False
        self.end_queued = False
        self.length_left: int | None = None
        self.outbox: collections.deque[bytes] = collections.deque()
        self.queued = 0
        self.trailers: list[tuple[bytes, bytes]] | None = None

    def send(self, event: Event) -> bytes:
        """Queue the frames for *event*; return ``b""`` (see the class docstring).

        Raises:
            InvalidSendState: an event out of order.
            FramingMismatch: more content than the response's ``Content-Length``, or an
                end before all of it.
            InvalidMessageToSend: ``101`` (RFC 9113 §8.6: no such response in HTTP/2),
                or an event a server does not send.
        """
        kind = type(event)
        if kind is Data:
            if not self.started or self.end_queued:
                raise InvalidSendState("content sent outside a response")
            data = event.data  # type: ignore[attr-defined]
            if data and not self.no_body:
                left = self.length_left
                if left is not None:
                    if len(data) > left:
                        raise FramingMismatch("more content than Content-Length announced")
                    self.length_left = left - len(data)
                self.queue(data)
            return b""
        if kind is Response:
            if self.started:
                raise InvalidSendState("a response was sent already")
            status = event.status_code  # type: ignore[attr-defined]
            headers: Headers = event.headers  # type: ignore[attr-defined]
            fields = outbound_fields(headers, event.connection, status)  # type: ignore[attr-defined]
            if status in _NO_BODY_STATUS:
                self.no_body = True
            elif not self.no_body:
                length = headers.first(b"content-length")
                if length is not None and length.isdigit():
                    self.length_left = int(length)
            self.started = True
            self._headers(fields, False)
            return b""
        if kind is EndOfMessage:
            if not self.started or self.end_queued:
                raise InvalidSendState("no response to end")
            if self.length_left:
                raise FramingMismatch(
                    f"the response ended {self.length_left} bytes short of its Content-Length")
            self.end(event.trailers)  # type: ignore[attr-defined]
            return b""
        if kind is InformationalResponse:
            status = event.status_code  # type: ignore[attr-defined]
            if status == 101:
                raise InvalidMessageToSend(
                    "101 Switching Protocols does not exist in HTTP/2 (RFC 9113 §8.6)")
            if self.started:
                raise InvalidSendState("a 1xx after the final response")
            self._headers(outbound_fields(event.headers, event.connection,  # type: ignore[attr-defined]
                                          status), False)
            return b""
        raise InvalidMessageToSend(f"a server does not send {kind.__name__}")

    def queue(self, data: bytes) -> None:
        stream = self.stream
        if stream.ended:
            return
        self.outbox.append(data)
        self.queued += len(data)
        if self.queued > HIGH_WATER and not stream.flow.write_paused:
            stream.transport_paused()  # (this stream's writer waits, as for a full transport)
        stream.conn.want_flush(stream)

    def end(self, trailers: Headers) -> None:
        """Queue the end of the stream's output, with *trailers* when there are any."""
        if self.end_queued:
            return
        self.end_queued = True
        if trailers:
            kept = drop_connection_specific(trailers)
            if kept:
                self.trailers = outbound_fields(kept)
        stream = self.stream
        if not stream.ended:
            stream.conn.want_flush(stream)

    def _headers(self, fields: list[tuple[bytes, bytes]], end: bool) -> None:
        stream = self.stream
        if stream.ended:
            return
        conn = stream.conn
        try:
            conn.h2.send_headers(stream.sid, fields, end_stream=end)
        except H2Error as exc:  # (the stream or connection closed under us)
            error_log.debug("%s: HTTP/2 stream %d: head not sent: %s", conn.peer(),
                            stream.sid, exc)
            return
        conn.want_flush()

    def push(self) -> bool:
        """Frame what the peer's window allows; True when nothing waits any more."""
        stream = self.stream
        if stream.ended:
            return True
        h2 = stream.conn.h2
        sid = stream.sid
        outbox = self.outbox
        try:
            while outbox:
                window = h2.local_flow_control_window(sid)
                if window <= 0:
                    return False
                size = min(window, h2.max_outbound_frame_size)
                chunk = outbox[0]
                if len(chunk) > size:
                    outbox[0] = chunk[size:]
                    chunk = chunk[:size]
                else:
                    outbox.popleft()
                self.queued -= len(chunk)
                last = not outbox and self.end_queued and self.trailers is None
                h2.send_data(sid, chunk, end_stream=last)
                if last:
                    stream.sent_all()
                    return True
            if not self.end_queued:
                return True
            if self.trailers is not None:
                h2.send_headers(sid, self.trailers, end_stream=True)
            else:
                h2.end_stream(sid)
        except H2Error as exc:
            error_log.debug("%s: HTTP/2 stream %d: output dropped: %s", stream.conn.peer(),
                            sid, exc)
            self.drop()
            return True
        stream.sent_all()
        return True

    def drop(self) -> None:
        self.outbox.clear()
        self.queued = 0
