"""HTTP/2 on the serving endpoint (RFC 9113): one connection, many streams, the same handlers.

The serving endpoint (:class:`~onehop._aio.endpoint.ServerEndpoint`) notices
HTTP/2 (the client connection preface as the first bytes of a cleartext
connection, or ALPN ``h2`` on TLS) and hands its bytes to an
:class:`Http2Connection`, which drives the ``h2`` library's sans-I/O state
machine (no framer of ours). Each request stream becomes a
:class:`~onehop._aio.h2stream.Stream`, an :class:`~onehop._aio.handlers.Endpoint`
like the HTTP/1 one, answered by a handler the endpoint's factory makes for it:
the ASGI server and the proxy run unchanged over HTTP/2. A stream's ``core``
(:class:`~onehop._aio.h2stream.StreamCore`) turns the core's events into frames;
it returns no bytes, since header blocks share one HPACK state and must reach the
wire in the order they were encoded: all output leaves through this connection's
buffer, written once per loop iteration for every stream
(:meth:`Http2Connection.want_flush`). This module owns the connection; the stream
and its framing are :mod:`onehop._aio.h2stream`.

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
import contextlib
import enum
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol

from onehop._aio.h2fields import WEBSOCKET, MalformedFields, request_from_fields
from onehop._aio.h2stream import Peer, Stream
from onehop._aio.timer import LazyTimer

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
    from onehop._aio.handlers import HandlerFactory
    from onehop._aio.serving import ServingConfig, ServingState

error_log: Final = logging.getLogger("onehop.error")


#: The connection-level receive window we open (RFC 9113 §6.9.2: it starts at 65,535
#: whatever SETTINGS say): room for several streams' uploads at once, bounded.
CONNECTION_WINDOW: Final = 1024 * 1024


class Owner(Peer, Protocol):
    """What the HTTP/2 connection uses of the serving endpoint that detected it (its
    addresses and scheme, :class:`~onehop._aio.h2stream.Peer`, go to every stream)."""

    transport: asyncio.Transport | None
    loop: asyncio.AbstractEventLoop
    state: ServingState
    config: ServingConfig
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

    __slots__ = ("_deadline", "_timer", "closed", "config", "extended_connect", "factory",
                 "flush_scheduled", "goaway_last", "h2", "loop", "owner", "pending", "requests",
                 "resets", "state", "streams", "transport_paused")

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
        announced = {
            SettingCodes.MAX_CONCURRENT_STREAMS: settings.max_concurrent_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: settings.max_header_list_size,
            SettingCodes.INITIAL_WINDOW_SIZE: settings.initial_window_size,
        }
        #: Extended CONNECT is announced (RFC 8441 §3): a ``:protocol`` may come.
        self.extended_connect = config.extended_connect
        if config.extended_connect:
            announced[SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
        conn.local_settings = Settings(client=False, initial_values=announced)
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
            error_log.info("%s: HTTP/2 connection error: %s", self.peer(), exc)
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
                error_log.exception("%s: request handler failed", self.peer())
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
        open streams finish, then the connection closes (a stream that switched
        protocols hears it as an HTTP/1 connection would). Idle: it closes now."""
        if self.closed:
            return
        if not self.streams:
            self._close()
            return
        self._goaway()
        for stream in list(self.streams.values()):
            if stream.tunnel is not None:
                stream.tunnel.shutdown()  # (a WebSocket closes with 1012; a tunnel lasts)

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
            request, protocol = request_from_fields(event.headers, ends_stream=ends,
                                                    extended_connect=self.extended_connect)
        except MalformedFields as exc:
            error_log.info("%s: HTTP/2 stream %d: malformed request: %s", self.peer(), sid,
                           exc)
            if exc.reset:
                # RFC 9113 §8.1.1: "MUST be treated as a stream error of type PROTOCOL_ERROR".
                self.h2.reset_stream(sid, ErrorCodes.PROTOCOL_ERROR)
                return
            self._answer_alone(sid, ends, 400, f"Bad Request: {exc}")
            return
        if protocol is not None and protocol.lower() != WEBSOCKET:
            self._answer_alone(sid, ends, 501, "Not Implemented: no :protocol "
                               f"{protocol.decode('latin-1')!r} here, only websocket "
                               "(RFC 8441 §4)")
            return
        stream = Stream(self, sid, request.method)
        self.streams[sid] = stream
        if protocol is not None:
            # (An extended CONNECT's DATA are the protocol's, RFC 8441 §4: they wait,
            # unacknowledged, for the handler's switch, as bytes after an HTTP/1.1 upgrade
            # request wait for the 101.)
            stream.read_paused = True
        limit = self.config.max_requests_per_connection
        if limit is not None and self.requests >= limit and self.goaway_last is None:
            self._goaway()  # (this one is still served)
        state = self.state
        if not state.admit():
            error_log.warning("%s: 503 over the concurrency limit (%d)", self.peer(),
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
            elif self.config.body_timeout is not None and protocol is None:
                stream.arm_body_timer()  # (an extended CONNECT's DATA is no body)

    def _answer_alone(self, sid: int, ends: bool, status: int, text: str) -> None:
        """Answer a request no handler sees (malformed, or a protocol not served) with
        *status* on its stream; the connection goes on."""
        stream = Stream(self, sid, b"GET")
        stream.body_complete = ends
        self.streams[sid] = stream
        stream.send_error(status, text)

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
                              self.peer(), self.resets, self.requests)
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
                           self.peer(), event.error_code, len(self.streams))
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
            error_log.info("%s: no HTTP/2 request within %g s", self.peer(),
                           self.config.header_timeout)
        if not self.streams:
            self._close()

    def peer(self) -> str:
        """The client's ``host:port``, for log lines."""
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
