"""HTTP/2 on the serving endpoint (RFC 9113): one connection, many streams, the same handlers.

The serving endpoint (:class:`~onehop._aio.endpoint.ServerEndpoint`) notices
HTTP/2 (the client connection preface as the first bytes of a cleartext
connection, or ALPN ``h2`` on TLS) and hands its bytes to an
:class:`Http2Connection`, which drives the ``h2`` library's sans-I/O state
machine (no framer of ours). Each request stream becomes a :class:`Stream`, an
:class:`~onehop._aio.handlers.Endpoint` like the HTTP/1 one, answered by a
handler the endpoint's factory makes for it: the ASGI server and the proxy run
unchanged over HTTP/2. A stream's ``core`` is an adapter whose ``send`` turns
the core's events into frames; it returns no bytes, since header blocks share
one HPACK state and must reach the wire in the order they were encoded: all
output leaves through the connection's buffer, written once per loop iteration
for every stream (:meth:`Http2Connection.want_flush`).

Where the rules live: field blocks are converted by :mod:`onehop._aio.h2fields`
(a request carrying a connection-specific field is a stream error,
PROTOCOL_ERROR, RFC 9113 §8.2.2; nothing connection-specific is ever sent);
flow control is per stream (a stream's :class:`~onehop._aio.flow.FlowControl`
pauses while its output waits beyond a high-water mark, for the peer's window
or the transport, and its request body is acknowledged only as the handler
takes it); the connection applies the serving endpoint's rules: the overload
gate per stream, the header timeout until the first request, the idle timeout
while no stream is open, the body timeout per stream, the request limit, and
graceful shutdown with GOAWAY (RFC 9113 §6.8), in-flight streams finishing.

Everything runs on the loop's thread: no locks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol

from onehop._aio.flow import FlowControl
from onehop._aio.h2fields import (
    MalformedFields,
    drop_connection_specific,
    outbound_fields,
    request_from_fields,
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
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.errors import ErrorCodes
    from h2.events import (
        ConnectionTerminated,
        DataReceived,
        RemoteSettingsChanged,
        RequestReceived,
        StreamEnded,
        StreamReset,
        TrailersReceived,
        WindowUpdated,
    )
    from h2.exceptions import H2Error
    from h2.exceptions import ProtocolError as H2ProtocolError
    from h2.settings import SettingCodes, Settings
    from hyperframe.frame import GoAwayFrame
except ImportError:  # pragma: no cover - h2 is a dependency; a stripped install lacks it
    # (ServingConfig then turns HTTP/2 off, with one warning naming onehop[h2], and this
    # module's classes are never made.)
    pass

if TYPE_CHECKING:
    from onehop._aio.handlers import (
        ConnectionHandler,
        HandlerFactory,
        RequestHandler,
        TunnelReceiver,
    )
    from onehop._aio.serving import ServingConfig, ServingState

error_log: Final = logging.getLogger("onehop.error")

#: The client connection preface (RFC 9113 §3.4): the first bytes of every HTTP/2
#: connection, chosen so that an HTTP/1.x server fails on it rather than answering.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

#: A stream's output waiting (for the peer's window, the transport or the next flush)
#: past this many bytes pauses its writer; below ``LOW_WATER`` it resumes (the
#: transport's own marks, per stream).
HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024
#: The connection-level receive window we open (RFC 9113 §6.9.2: it starts at 65,535
#: whatever SETTINGS say): room for several streams' uploads at once, bounded.
CONNECTION_WINDOW: Final = 1024 * 1024

_END: Final = EndOfMessage()
_NO_BODY_STATUS: Final = frozenset({204, 304})


class Owner(Protocol):
    """What the HTTP/2 connection uses of the serving endpoint that detected it."""

    transport: asyncio.Transport | None
    loop: asyncio.AbstractEventLoop
    state: ServingState
    config: ServingConfig
    client_addr: tuple[str, int] | None
    server_addr: tuple[str, int] | None
    scheme: str
    #: Requests taken on the connection (for its logs): every stream counts.
    requests: int

    def close(self) -> None: ...

    def abort(self) -> None: ...


class Deadline(enum.Enum):
    """What the connection's one timer is timing."""

    NONE = "none"
    HEADER = "header"  #: the first request (after the preface) within ``header_timeout``
    IDLE = "idle"  #: no stream open for ``idle_timeout``


class Http2Connection:
    """One HTTP/2 connection on a serving endpoint (see the module docstring).

    The endpoint is in its ``HTTP2`` mode and passes this object every transport
    callback (it is the endpoint's :class:`~onehop._aio.handlers.TunnelReceiver`).
    Owns the ``h2`` state machine (``h2``), the open streams by id (``streams``), the
    streams with output to push (``pending``) and the timer.
    """

    __slots__ = ("_deadline", "_timer", "closed", "config", "factory", "flush_scheduled",
                 "goaway_last", "h2", "loop", "owner", "pending", "requests", "resets", "state",
                 "streams", "transport_paused")

    def __init__(self, owner: Owner, factory: HandlerFactory) -> None:
        self.owner = owner
        self.loop = owner.loop
        self.state = owner.state
        config = self.config = owner.config
        self.factory = factory
        settings = config.http2
        conn = self.h2 = H2Connection(H2Configuration(
            client_side=False, header_encoding=None,
            # Inbound blocks are checked by h2fields, which makes a malformed request a
            # stream error (RFC 9113 §8.1.1), where h2 would end the whole connection;
            # outbound ones are built valid there.
            validate_inbound_headers=False, normalize_inbound_headers=False,
            validate_outbound_headers=False, normalize_outbound_headers=False))
        conn.local_settings = Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: settings.max_concurrent_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: settings.max_header_list_size,
            SettingCodes.INITIAL_WINDOW_SIZE: settings.initial_window_size,
        })
        # (Values given as initial_values are h2's current ones, never "acknowledged": the
        # decoder's limit must be set here, or it stays at h2's default.)
        conn.decoder.max_header_list_size = settings.max_header_list_size
        conn.initiate_connection()
        window = max(CONNECTION_WINDOW, settings.initial_window_size)
        if window > 65535:
            conn.increment_flow_control_window(window - 65535)
        self.streams: dict[int, Stream] = {}
        self.pending: dict[int, Stream] = {}
        self.flush_scheduled = False
        self.transport_paused = False
        self.closed = False
        #: The last stream id a GOAWAY of ours let in (None: no GOAWAY sent).
        self.goaway_last: int | None = None
        self.requests = 0
        #: Requests the client reset before their answer was complete.
        self.resets = 0
        self._deadline = Deadline.HEADER
        self._timer = LazyTimer(self.loop, self._timer_fired)
        self._timer.arm(config.header_timeout)
        self._flush()

    # --- transport callbacks (through the endpoint) -----------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except H2ProtocolError as exc:
            # h2 has queued a GOAWAY with the error's code (RFC 9113 §5.4.1).
            error_log.info("%s: HTTP/2 connection error: %s", self._peer(), exc)
            self._terminate()
            return
        for index, event in enumerate(events):
            ev: Any = event  # (dispatched on its exact type: cheaper than isinstance)
            try:
                kind = type(ev)
                if kind is RequestReceived:
                    self._request(ev, events, index)
                elif kind is DataReceived:
                    stream = self.streams.get(ev.stream_id)
                    if stream is not None:
                        stream.data_received(ev.data, ev.flow_controlled_length)
                    else:  # (a stream we reset or refused: keep the connection window open)
                        self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif kind is StreamEnded:
                    stream = self.streams.get(ev.stream_id)
                    if stream is not None:
                        stream.request_ended()
                elif kind is WindowUpdated:
                    self._window_opened(ev.stream_id)
                elif kind is TrailersReceived:
                    stream = self.streams.get(ev.stream_id)
                    if stream is not None:
                        stream.trailers_received(ev.headers)
                elif kind is StreamReset:
                    stream = self.streams.get(ev.stream_id)
                    if stream is not None:
                        if not stream.complete:
                            self._cancelled()
                        stream.lost(reset=False)
                elif kind is RemoteSettingsChanged:
                    if SettingCodes.INITIAL_WINDOW_SIZE in ev.changed_settings:
                        self._window_opened(0)
                elif kind is ConnectionTerminated:
                    self._peer_goaway(ev)
            except Exception:  # a handler's bug costs its stream only, as on HTTP/1
                error_log.exception("%s: request handler failed", self._peer())
                failed = self.streams.get(getattr(ev, "stream_id", 0) or 0)
                if failed is not None:
                    failed.send_error(500, "Internal Server Error")
            if self.closed:
                return
        self._flush()

    def eof_received(self) -> bool | None:
        # An HTTP/2 client ends with GOAWAY, not a half-close: nothing more can come.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._timer.cancel()
        for stream in list(self.streams.values()):
            stream.lost(reset=False, exc=exc)
        self.streams.clear()
        self.pending.clear()

    def pause_writing(self) -> None:
        """The transport's buffer is full: every stream's writer waits."""
        self.transport_paused = True
        for stream in self.streams.values():
            stream.transport_paused()

    def resume_writing(self) -> None:
        self.transport_paused = False
        self._flush()
        for stream in list(self.streams.values()):
            stream.transport_resumed()

    def shutdown(self) -> None:
        """Graceful shutdown (RFC 9113 §6.8): GOAWAY naming the last stream taken; the
        open streams finish, then the connection closes. Idle: it closes now."""
        if self.closed:
            return
        if not self.streams:
            self._close()
            return
        self._goaway()

    # --- streams ------------------------------------------------------------------------------

    def _request(self, event: Any, events: list[Any], index: int) -> None:
        sid: int = event.stream_id
        if self.goaway_last is not None and sid > self.goaway_last:
            # After our GOAWAY: not processed, so the client may retry it elsewhere
            # (RFC 9113 §8.7).
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        self.requests += 1
        self.owner.requests += 1
        if self._deadline is not Deadline.NONE:
            self._deadline = Deadline.NONE
            self._timer.disarm()
        ends = event.stream_ended is not None or _ends_at_once(sid, events, index)
        try:
            request, _protocol = request_from_fields(event.headers, ends_stream=ends)
        except MalformedFields as exc:
            error_log.info("%s: HTTP/2 stream %d: malformed request: %s", self._peer(), sid,
                           exc)
            if exc.reset:
                # RFC 9113 §8.1.1: "MUST be treated as a stream error of type PROTOCOL_ERROR".
                self.h2.reset_stream(sid, ErrorCodes.PROTOCOL_ERROR)
                return
            stream = Stream(self, sid, b"GET")
            stream.body_complete = ends
            self.streams[sid] = stream
            stream.send_error(400, f"Bad Request: {exc}")
            return
        stream = Stream(self, sid, request.method)
        self.streams[sid] = stream
        limit = self.config.max_requests_per_connection
        if limit is not None and self.requests >= limit and self.goaway_last is None:
            self._goaway()  # (this one is still served)
        state = self.state
        if not state.admit():
            error_log.warning("%s: 503 over the concurrency limit (%d)", self._peer(),
                              self.config.limit_concurrency or 0)
            stream.counted = True
            stream.body_complete = ends
            stream.send_error(503, "Service Unavailable")
            return
        stream.counted = True
        max_body = self.config.limits.max_body_size
        if max_body is not None:
            length = request.headers.first(b"content-length")
            if length is not None and length.isdigit() and int(length) > max_body:
                stream.body_complete = ends
                stream.send_error(413, "Content Too Large: the request body is over "
                                       f"{max_body} bytes")
                return
        stream.connection_handler = self.factory(stream)
        handler = stream.connection_handler.on_request(stream, request)
        if not stream.complete:
            stream.handler = handler
            if ends:
                stream.request_ended()
            elif self.config.body_timeout is not None:
                stream.arm_body_timer()

    def _cancelled(self) -> None:
        """A client reset a stream before its answer was complete. A few are normal (a
        browser that navigates away); a connection that opens and resets streams without
        end makes work the stream limit never bounds (the "rapid reset" attack,
        CVE-2023-44487): past twice the stream limit, and more than half of all requests,
        it gets GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §5.4.1, §7)."""
        self.resets += 1
        limit = 2 * self.config.http2.max_concurrent_streams
        if self.resets > limit and 2 * self.resets > self.requests and not self.closed:
            error_log.warning("%s: HTTP/2 client reset %d of %d requests: closing",
                              self._peer(), self.resets, self.requests)
            self.h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
            self._terminate()

    def stream_closed(self, stream: Stream) -> None:
        """*stream* is over on both sides: forget it (its handler is told, once); close when
        draining, else time idleness."""
        if self.streams.pop(stream.sid, None) is None:
            return
        self.pending.pop(stream.sid, None)
        handler = stream.connection_handler
        if handler is not None:
            stream.connection_handler = None
            handler.on_closed()
        if self.streams or self.closed:
            return
        if self.goaway_last is not None:
            self._close()
        else:
            self._deadline = Deadline.IDLE
            self._timer.arm(self.config.idle_timeout)

    def want_flush(self, stream: Stream | None = None) -> None:
        """Push *stream*'s output (if any) and write the connection's frames soon: once per
        loop iteration, for every stream that wrote in it."""
        if stream is not None:
            self.pending[stream.sid] = stream
        if not self.flush_scheduled and not self.closed:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Frame what the streams have queued, as far as flow control lets, and write."""
        self.flush_scheduled = False
        if self.closed:
            return
        pending = self.pending
        if pending and not self.transport_paused:
            for stream in list(pending.values()):
                if stream.push():
                    pending.pop(stream.sid, None)
        data = self.h2.data_to_send()
        if data:
            transport = self.owner.transport
            if transport is not None:
                transport.write(data)

    def _window_opened(self, stream_id: int) -> None:
        """WINDOW_UPDATE (or a larger initial window): push the streams that waited."""
        if stream_id and stream_id not in self.pending:
            return
        self._flush()

    # --- ending -------------------------------------------------------------------------------

    def _goaway(self) -> None:
        """Send GOAWAY (NO_ERROR) naming the highest stream taken; later ones are refused.

        Written beside h2 rather than through it: h2 takes no frame for any stream
        once it sent GOAWAY, but the streams it lets in must finish (RFC 9113 §6.8).
        """
        if self.goaway_last is not None:
            return
        last = self.goaway_last = self.h2.highest_inbound_stream_id
        frame = GoAwayFrame(0)
        frame.last_stream_id = last
        frame.error_code = ErrorCodes.NO_ERROR
        transport = self.owner.transport
        if transport is not None:
            transport.write(self.h2.data_to_send() + frame.serialize())

    def _peer_goaway(self, event: Any) -> None:
        """The client sent GOAWAY: the connection ends (streams still open are cut).

        RFC 9113 §6.8 would let the streams it names finish, but h2 sends no frame
        once it has seen a GOAWAY; clients send theirs when done (curl, nghttp,
        h2load, browsers), so this costs nothing in practice (hypercorn does the same).
        """
        if event.error_code != ErrorCodes.NO_ERROR or self.streams:
            error_log.info("%s: HTTP/2 GOAWAY from the client (%s) with %d stream(s) open",
                           self._peer(), event.error_code, len(self.streams))
        self._terminate()

    def _close(self) -> None:
        """A graceful end: GOAWAY (NO_ERROR) and close, nothing in flight."""
        if self.closed:
            return
        with contextlib.suppress(H2Error):
            self.h2.close_connection()
        self._terminate()

    def _terminate(self) -> None:
        """Write what h2 has queued (its GOAWAY) and close the connection."""
        if self.closed:
            return
        data = self.h2.data_to_send()
        transport = self.owner.transport
        if data and transport is not None:
            transport.write(data)
        self.closed = True
        self._timer.cancel()
        for stream in list(self.streams.values()):
            stream.lost(reset=False)
        self.owner.close()

    def _timer_fired(self) -> None:
        deadline, self._deadline = self._deadline, Deadline.NONE
        if self.closed or deadline is Deadline.NONE:
            return
        if deadline is Deadline.HEADER:
            error_log.info("%s: no HTTP/2 request within %g s", self._peer(),
                           self.config.header_timeout)
        if not self.streams:
            self._close()

    def _peer(self) -> str:
        addr = self.owner.client_addr
        return f"{addr[0]}:{addr[1]}" if addr else "-"


def _ends_at_once(sid: int, events: list[Any], index: int) -> bool:
    """Whether the request on *sid* ends, in the same read, before any content: a client
    may send END_STREAM on an empty DATA frame rather than on HEADERS; such a request has
    no content, and must not reach an HTTP/1.1 upstream framed chunked."""
    for event in events[index + 1:]:
        if getattr(event, "stream_id", None) != sid:
            continue
        if type(event) is DataReceived:
            if event.data:
                return False
            if event.stream_ended is not None:
                return True
            continue
        return type(event) is StreamEnded
    return False


class Stream:
    """One request stream: the :class:`~onehop._aio.handlers.Endpoint` its handler answers on.

    Owned by its :class:`Http2Connection`. ``core`` turns the handler's events into
    frames (:class:`StreamCore`); ``write`` queues content (a tunnel's bytes), and
    ``finish`` ends the answer. Request content goes to ``handler`` as it arrives,
    and is acknowledged to the peer (its flow-control window reopened) only as the
    handler takes it: a paused handler holds the client back by the window alone
    (RFC 9113 §5.2), with no transport pause that would stall the other streams.
    """

    __slots__ = ("_body_timer", "body_complete", "client_addr", "complete", "conn",
                 "connection_handler", "core", "counted", "ended", "flow", "handler", "inbox",
                 "loop", "read_paused", "received", "scheme", "server_addr", "sid", "trailers",
                 "tunnel")

    def __init__(self, conn: Http2Connection, sid: int, method: bytes) -> None:
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
            error_log.info("%s: HTTP/2 stream %d: malformed trailers: %s", self.conn._peer(),
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
                       self.conn._peer(), self.sid, self.conn.config.body_timeout or 0)
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
        """After a ``CONNECT`` 2xx: the stream's DATA both ways is the tunnel's
        (RFC 9113 §8.5); END_STREAM is its half-close."""
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
        """Cut this stream (RST_STREAM INTERNAL_ERROR): a failure mid-response."""
        self._reset(ErrorCodes.INTERNAL_ERROR)

    def close(self) -> None:
        """End this stream: a tunnel's output ends; an unfinished answer is cancelled."""
        if self.tunnel is not None and not self.ended:
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
            error_log.debug("%s: HTTP/2 stream %d reset or cut", self.conn._peer(), self.sid)
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
            error_log.debug("%s: HTTP/2 stream %d: head not sent: %s", conn._peer(),
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
            error_log.debug("%s: HTTP/2 stream %d: output dropped: %s", stream.conn._peer(),
                            sid, exc)
            self.drop()
            return True
        stream.sent_all()
        return True

    def drop(self) -> None:
        self.outbox.clear()
        self.queued = 0
