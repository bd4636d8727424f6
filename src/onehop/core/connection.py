"""One HTTP/1.x connection, sans I/O: bytes in, events out; events in, bytes out.

:class:`Connection` keeps two role-blind state machines (:mod:`state`), one for
what we write and one for what we read, and applies the role rules next to
them: a server yields pipelined requests one at a time, each only after the
previous response is complete; a client may pipeline and remembers which
requests are unanswered. Framing (:mod:`framing`), persistence
(:mod:`persistence`) and the hop-by-hop split (:mod:`headers`) are each decided
in one place and only called from here.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from typing import Final

from onehop.core.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    _Sentinel,
)
from onehop.core.framing import Framing, is_chunked, message_framing, parse_content_length
from onehop.core.headers import (
    HOP_BY_HOP_FIELDS,
    NO_CONNECTION_INFO,
    TOKEN_RE,
    ConnectionInfo,
    Field,
    Headers,
    scan_fields,
    split_fields,
)
from onehop.core.persistence import persists_after
from onehop.core.reader import (
    DEFAULT_LIMITS,
    ChunkedReader,
    HeadParser,
    Limits,
    parse_fields,
    parse_request_line,
    parse_status_line,
)
from onehop.core.state import State, Trigger, transition
from onehop.core.target import check_host, check_request_target
from onehop.core.writer import BodyWriter, write_head
from onehop.errors import (
    BodyTooLarge,
    FramingMismatch,
    HopByHopInHeaders,
    IncompleteMessage,
    InvalidMessageToSend,
    InvalidSendState,
    ProtocolError,
    RemoteProtocolError,
    UnexpectedResponse,
)


class Role(enum.Enum):
    """Which side of the connection we are."""

    CLIENT = "client"
    SERVER = "server"


_TARGET_RE: Final = re.compile(rb"[\x21-\x7e]+")
_REASON_RE: Final = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
#: Hop-by-hop fields the writer produces, or that need no Connection listing because
#: every recipient treats them as hop-by-hop already (the fixed set; TE, Upgrade and
#: Keep-Alive are listed since RFC 9110 §10.1.4, §7.8 and RFC 7230 §A.1.2 ask for it).
_UNLISTED: Final = frozenset(
    {b"connection", b"transfer-encoding", b"proxy-authorization", b"proxy-authenticate",
     b"proxy-connection", b"trailer"}
)
_REASONS: Final = {
    100: b"Continue", 101: b"Switching Protocols", 103: b"Early Hints", 200: b"OK",
    201: b"Created", 202: b"Accepted", 204: b"No Content", 206: b"Partial Content",
    301: b"Moved Permanently", 302: b"Found", 303: b"See Other", 304: b"Not Modified",
    307: b"Temporary Redirect", 308: b"Permanent Redirect", 400: b"Bad Request",
    401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
    408: b"Request Timeout", 411: b"Length Required", 413: b"Content Too Large",
    414: b"URI Too Long", 417: b"Expectation Failed", 426: b"Upgrade Required",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 501: b"Not Implemented", 502: b"Bad Gateway",
    503: b"Service Unavailable", 504: b"Gateway Timeout", 505: b"HTTP Version Not Supported",
}


_STATUS_LINES: Final = {code: b"HTTP/1.1 %d %s" % (code, text) for code, text in _REASONS.items()}


def reason_phrase(status: int) -> bytes:
    """The customary reason-phrase for *status* (RFC 9110 §15), or empty."""
    return _REASONS.get(status, b"")


def _offers_upgrade(conn: ConnectionInfo) -> bool:
    """A received message offers Upgrade only when Connection lists it (RFC 9110 §7.8)."""
    return b"upgrade" in conn.options and b"upgrade" in conn.fields


def _sends_upgrade(conn: ConnectionInfo) -> bool:
    """A message we send offers Upgrade when it carries the field: the writer lists it."""
    return b"upgrade" in conn.fields


class Connection:
    """A sans-I/O HTTP/1.0/1.1 connection for one role.

    Feed received bytes to :meth:`receive_data` (``b""`` for end of stream),
    pull events from :meth:`next_event`, and turn events you send into bytes
    with :meth:`send`. The connection writes ``Connection`` and the framing
    fields itself; callers pass end-to-end fields in ``headers`` and
    connection-specific ones in ``connection`` (:class:`ConnectionInfo`).

    Args:
        role: ``Role.CLIENT`` or ``Role.SERVER``.
        limits: size limits for received messages.
        intermediary: we are a proxy; an HTTP/1.0 client is never kept alive
            (RFC 9112 §9.3, RFC 7230 §6.3).
        keep_alive: we are willing to persist at all; False sends ``close``.
        http10_keep_alive: honour ``Connection: keep-alive`` from HTTP/1.0 peers.
    """

    __slots__ = (
        "_allow_keep_alive",
        "_buf",
        "_chunked",
        "_eof",
        "_error",
        "_head",
        "_http10_keep_alive",
        "_intermediary",
        "_limits",
        "_outstanding",
        "_persist",
        "_read",
        "_request",
        "_response_done",
        "_rframing",
        "_rleft",
        "_sent_host",
        "_wbody",
        "_write",
        "role",
    )

    def __init__(
        self,
        role: Role,
        *,
        limits: Limits = DEFAULT_LIMITS,
        intermediary: bool = False,
        keep_alive: bool = True,
        http10_keep_alive: bool = True,
    ) -> None:
        self.role = role
        self._limits = limits
        self._intermediary = intermediary
        self._allow_keep_alive = keep_alive
        self._http10_keep_alive = http10_keep_alive
        self._buf = bytearray()
        self._eof = False
        self._head = HeadParser(limits, is_request=role is Role.SERVER)
        self._read = State.IDLE
        self._write = State.IDLE
        self._persist = keep_alive
        self._error: ProtocolError | None = None
        self._rframing = Framing.NO_BODY
        self._rleft = 0
        self._chunked: ChunkedReader | None = None
        self._wbody = BodyWriter(Framing.NO_BODY)
        # server: the request being answered (None once its response is complete)
        self._request: Request | None = None
        self._response_done = False
        self._sent_host = False
        # client: requests sent without a final response yet, oldest first
        self._outstanding: deque[Request] = deque()

    # --- inspection ---------------------------------------------------------------------------

    @property
    def our_state(self) -> State:
        """State of the direction we write."""
        return self._write

    @property
    def their_state(self) -> State:
        """State of the direction we read."""
        return self._read

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may still persist after the current exchange."""
        return self._persist

    @property
    def must_close(self) -> bool:
        """True once no further message can be sent or read: the caller should close.

        RFC 9112 §9.6: after ``close`` is sent or received, no further request
        is sent or processed.
        """
        return self._write in (State.DONE, State.CLOSED, State.ERROR) or (self._read in (
            State.DONE,
            State.CLOSED,
            State.ERROR,
        ) and not (self.role is Role.SERVER and self._request is not None))

    @property
    def is_idle(self) -> bool:
        """Both directions between messages, nothing buffered, nothing outstanding.

        A client pool returns a connection only in this state (RFC 9112 §9.3).
        """
        return (
            self._write is State.IDLE
            and self._read is State.IDLE
            and not self._outstanding
            and not self._buf
            and not self._eof
            and self._persist
        )

    @property
    def can_send_request(self) -> bool:
        """Client: whether a new request may be written now (pipelining allowed)."""
        return self.role is Role.CLIENT and self._write is State.IDLE and self._persist

    @property
    def unanswered_requests(self) -> list[Request]:
        """Client: requests sent that got no final response yet, oldest first.

        After the server closes or answers ``close``, these never will be
        answered on this connection; a caller may retry the idempotent ones.
        """
        return list(self._outstanding)

    @property
    def current_request(self) -> Request | None:
        """Server: the request whose response is not yet complete."""
        return self._request

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed (for flow control)."""
        return len(self._buf)

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not parsed, and whether EOF was seen.

        After a switch (101 or CONNECT 2xx) these belong to the new protocol.
        """
        return bytes(self._buf), self._eof

    # --- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer closed its sending side."""
        if data:
            if not self._eof:
                self._buf += data
        else:
            self._eof = True

    def next_event(self) -> Event | _Sentinel:
        """Return the next event, ``NEED_DATA`` or ``PAUSED``.

        Raises:
            RemoteProtocolError: (a subclass naming the cause) the peer broke
                the protocol; the same error is raised again on every later call.
        """
        state = self._read
        try:
            if state is State.BODY:
                return self._read_body()
            if state is State.IDLE:
                if self.role is Role.SERVER:
                    return self._read_request()
                return self._read_response()
        except RemoteProtocolError as exc:
            self._fail_read(exc)
            raise
        if state is State.ERROR:
            assert self._error is not None
            raise self._error
        if state is State.CLOSED:
            return ConnectionClosed()
        if state is State.DONE and self._eof and not self._buf:
            self._read = transition(state, Trigger.CLOSE)
            return ConnectionClosed()
        return PAUSED

    def _fail_read(self, exc: ProtocolError) -> None:
        self._read = State.ERROR
        self._error = exc
        self._persist = False

    def _closed_between_messages(self) -> Event:
        if self._buf:
            raise IncompleteMessage("connection closed inside a message head")
        self._read = transition(self._read, Trigger.CLOSE)
        return ConnectionClosed()

    def _read_request(self) -> Event | _Sentinel:
        got = self._head.take_head(self._buf)
        if got is None:
            return self._closed_between_messages() if self._eof else NEED_DATA
        start, block = got
        method, target, version = parse_request_line(start)
        check_request_target(method, target)
        fields = parse_fields(block, self._limits)
        special = scan_fields(fields)
        check_host(special.get(b"host") if special else None, version)
        framing, length = message_framing(special, version, request_method=method,
                                          status_code=None)
        headers, conn = split_fields(fields, special)
        self._start_body(framing, length)
        # (HTTP/1.1 without options persists: skip the call on the hot path.)
        if (conn.options or version == b"1.0") and not persists_after(
            version,
            conn.options,
            is_request=True,
            intermediary=self._intermediary,
            honor_http10_keep_alive=self._http10_keep_alive,
        ):
            self._persist = False
        request = Request(method, target, headers, conn, version)
        self._request = request
        self._response_done = False
        self._read = transition(State.IDLE, Trigger.HEAD)
        return request

    def _read_response(self) -> Event | _Sentinel:
        if not self._outstanding:
            # Nothing asked: whatever arrives (a 408, garbage) is not parsed;
            # a pool sees ``buffered``/EOF and discards the connection.
            if self._eof and not self._buf:
                return self._closed_between_messages()
            return PAUSED
        got = self._head.take_head(self._buf)
        if got is None:
            return self._closed_between_messages() if self._eof else NEED_DATA
        start, block = got
        version, status, reason = parse_status_line(start)
        fields = parse_fields(block, self._limits)
        special = scan_fields(fields)
        headers, conn = split_fields(fields, special)
        request = self._outstanding[0]
        if status < 200:
            event = InformationalResponse(status, headers, reason, conn, version)
            if status == 101:
                if not _sends_upgrade(request.connection):
                    raise UnexpectedResponse("101 Switching Protocols without an Upgrade offer")
                self._outstanding.popleft()
                self._switch()
            return event
        framing, length = message_framing(
            special, version, request_method=request.method, status_code=status
        )
        response = Response(status, headers, reason, conn, version)
        if framing is Framing.TUNNEL:
            self._outstanding.popleft()
            self._switch()
            return response
        if framing is Framing.UNTIL_CLOSE or not persists_after(
            version, conn.options, is_request=False,
            honor_http10_keep_alive=self._http10_keep_alive,
        ):
            self._persist = False
        self._start_body(framing, length)
        self._read = transition(State.IDLE, Trigger.HEAD)
        return response

    def _start_body(self, framing: Framing, length: int) -> None:
        limit = self._limits.max_body_size
        if limit is not None and framing is Framing.LENGTH and length > limit:
            raise BodyTooLarge(f"Content-Length {length} exceeds the limit of {limit} bytes")
        self._rframing = framing
        self._rleft = length
        self._chunked = ChunkedReader(self._limits) if framing is Framing.CHUNKED else None

    def _read_body(self) -> Event | _Sentinel:
        framing = self._rframing
        buf = self._buf
        if framing is Framing.LENGTH:
            left = self._rleft
            if left == 0:
                return self._end_read(EndOfMessage())
            if not buf:
                if self._eof:
                    raise IncompleteMessage(f"connection closed with {left} body bytes missing")
                return NEED_DATA
            if len(buf) <= left:
                data = bytes(buf)
                buf.clear()
            else:
                data = bytes(buf[:left])
                del buf[:left]
            self._rleft = left - len(data)
            return Data(data)
        if framing is Framing.CHUNKED:
            assert self._chunked is not None
            got = self._chunked.read(buf, self._eof)
            if got is None:
                return NEED_DATA
            if isinstance(got, bytes):
                return Data(got)
            return self._end_read(EndOfMessage(Headers._trusted(got)))
        if framing is Framing.UNTIL_CLOSE:
            if buf:
                limit = self._limits.max_body_size
                self._rleft += len(buf)
                if limit is not None and self._rleft > limit:
                    raise BodyTooLarge(f"body larger than {limit} bytes")
                data = bytes(buf)
                buf.clear()
                return Data(data)
            if self._eof:
                return self._end_read(EndOfMessage())
            return NEED_DATA
        return self._end_read(EndOfMessage())

    def _end_read(self, event: EndOfMessage) -> EndOfMessage:
        if self.role is Role.SERVER:
            if not self._persist:
                trigger = Trigger.END_LAST
            elif self._response_done:
                trigger = Trigger.END
            else:
                trigger = Trigger.PAUSE
            self._read = transition(self._read, trigger)
            self._head.reset()
            return event
        request = self._outstanding.popleft()
        if self._persist:
            self._read = transition(self._read, Trigger.END)
            if self._write is State.PAUSED and (
                request.method == b"CONNECT" or _sends_upgrade(request.connection)
            ):
                self._write = transition(self._write, Trigger.RESUME)
        else:
            self._read = transition(self._read, Trigger.END_LAST)
            if self._write in (State.IDLE, State.PAUSED):
                self._write = State.DONE
        self._head.reset()
        return event

    def _switch(self) -> None:
        self._read = transition(self._read, Trigger.SWITCH)
        self._write = transition(self._write, Trigger.SWITCH)

    # --- sending ------------------------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """Return the bytes for *event*; the caller writes them to the transport.

        Raises:
            LocalProtocolError: (a subclass naming the cause) the event is
                invalid or not allowed now; nothing was written and the state
                is unchanged, so the caller may send something else.
        """
        if type(event) is Data:
            if self._write is not State.BODY:
                raise InvalidSendState(f"cannot send Data in state {self._write.name}")
            return self._wbody.data(event.data)
        if type(event) is EndOfMessage:
            return self._send_end(event)
        if type(event) is Response:
            return self._send_response(event)
        if type(event) is Request:
            return self._send_request(event)
        if type(event) is InformationalResponse:
            return self._send_informational(event)
        if type(event) is ConnectionClosed:
            self._write = transition(self._write, Trigger.CLOSE)
            return b""
        raise InvalidSendState(f"cannot send {type(event).__name__}")

    def send_failed(self) -> None:
        """Tell the connection that writing failed; it is unusable from now on."""
        self._write = transition(self._write, Trigger.FAIL)
        self._persist = False

    def _check_fields(self, headers: Headers, conn: ConnectionInfo) -> list[bytes]:
        """Reject hop-by-hop fields passed as end-to-end; return Content-Length values.

        Sets ``self._sent_host`` as a by-product, so the Host rule needs no second pass.
        """
        nominated = conn.options
        lengths: list[bytes] = []
        has_host = False
        for f in headers.fields:
            name = f[0]
            if name == b"host":
                has_host = True
                continue
            if name in HOP_BY_HOP_FIELDS or name in nominated or name == b"close":
                # "close" is a reserved field name (RFC 9110 §18.4): our own
                # ``Connection: close`` would nominate it and strip it.
                raise HopByHopInHeaders(
                    f"{f[1].decode('latin-1')!r} is hop-by-hop: pass it in `connection`, not "
                    "`headers` (RFC 9110 §7.6.1)"
                )
            if name == b"content-length":
                lengths.append(f[2])
        self._sent_host = has_host
        for option in nominated:  # (empty for the shared NO_CONNECTION_INFO)
            if not TOKEN_RE.fullmatch(option):
                raise InvalidMessageToSend(f"connection option {option!r} is not a token")
        return lengths

    def _connection_tokens(self, conn: ConnectionInfo, persist: bool, peer_10: bool) -> list[bytes]:
        tokens: list[bytes] = []
        if not persist:
            tokens.append(b"close")
        elif peer_10:
            tokens.append(b"keep-alive")
        if conn is NO_CONNECTION_INFO:
            return tokens
        for f in conn.fields.fields:
            name = f[0]
            if name not in _UNLISTED and name not in tokens and (persist or name != b"keep-alive"):
                tokens.append(name)
        for option in sorted(conn.options):
            if option not in (b"close", b"keep-alive") and option not in tokens:
                tokens.append(option)
        return tokens

    @staticmethod
    def _conn_fields_to_write(conn: ConnectionInfo, persist: bool) -> list[Field]:
        if conn is NO_CONNECTION_INFO:
            return []
        return [
            f for f in conn.fields.fields
            if f[0] not in (b"connection", b"transfer-encoding", b"proxy-connection")
            and (persist or f[0] != b"keep-alive")
        ]

    @staticmethod
    def _wants_chunked(conn: ConnectionInfo) -> bool:
        if conn is NO_CONNECTION_INFO:
            return False
        te = conn.fields.get_all(b"transfer-encoding")
        if not te:
            return False
        try:
            return is_chunked(te)
        except ProtocolError as exc:
            raise FramingMismatch(f"cannot send Transfer-Encoding: {exc.msg}") from None

    @staticmethod
    def _length(values: list[bytes]) -> int:
        try:
            return parse_content_length(values)
        except ProtocolError as exc:
            raise FramingMismatch(f"cannot send Content-Length: {exc.msg}") from None

    def _send_request(self, event: Request) -> bytes:
        if self.role is not Role.CLIENT:
            raise InvalidSendState("only a client sends requests")
        if self._write is not State.IDLE or (not self._persist and self._outstanding):
            raise InvalidSendState(
                f"cannot send a request now (writer {self._write.name}"
                + (", connection closing)" if not self._persist else ")")
            )
        method, target, version = event.method, event.target, event.http_version
        if not TOKEN_RE.fullmatch(method):
            raise InvalidMessageToSend(f"invalid method {method!r}")
        if not _TARGET_RE.fullmatch(target):
            raise InvalidMessageToSend(f"invalid request-target {target!r}")
        if version not in (b"1.1", b"1.0"):
            raise InvalidMessageToSend(f"cannot send HTTP/{version.decode('latin-1')}")
        try:
            check_request_target(method, target)
        except ProtocolError as exc:
            raise InvalidMessageToSend(exc.msg) from None
        conn = event.connection
        lengths = self._check_fields(event.headers, conn)
        if version == b"1.1" and not self._sent_host:
            raise InvalidMessageToSend("an HTTP/1.1 request needs a Host field (RFC 9112 §3.2)")
        chunked = self._wants_chunked(conn)
        if chunked and lengths:
            raise FramingMismatch("both Content-Length and chunked requested")
        if chunked and version == b"1.0":
            raise FramingMismatch("HTTP/1.0 cannot carry chunked content")
        if lengths:
            body = BodyWriter(Framing.LENGTH, self._length(lengths))
        elif chunked:
            body = BodyWriter(Framing.CHUNKED)
        else:
            body = BodyWriter(Framing.NO_BODY)
        persist = self._persist and self._allow_keep_alive and not conn.close
        tokens = self._connection_tokens(conn, persist, version == b"1.0")
        head = write_head(
            b"%s %s HTTP/%s" % (method, target, version),
            event.headers.fields,
            self._conn_fields_to_write(conn, persist),
            tokens,
            b"Transfer-Encoding: chunked" if chunked else b"",
        )
        self._persist = persist
        self._wbody = body
        self._outstanding.append(event)
        self._write = transition(self._write, Trigger.HEAD)
        return head

    def _send_informational(self, event: InformationalResponse) -> bytes:
        request = self._request
        if self.role is not Role.SERVER or request is None or self._write is not State.IDLE:
            raise InvalidSendState("a 1xx response needs a request awaiting its response")
        status = event.status_code
        if not 100 <= status <= 199:
            raise InvalidMessageToSend(f"{status} is not a 1xx status")
        if request.http_version == b"1.0":
            raise InvalidSendState("a server MUST NOT send a 1xx response to an HTTP/1.0 client "
                                   "(RFC 9110 §15.2)")
        conn = event.connection
        self._check_fields(event.headers, conn)
        switching = status == 101
        if switching:
            if not _offers_upgrade(request.connection) or b"upgrade" not in conn.fields:
                raise InvalidMessageToSend("101 needs an Upgrade offer and an Upgrade field")
            if self._read not in (State.PAUSED, State.DONE):
                raise InvalidSendState("cannot switch protocols before the request is complete")
        # RFC 9110 §7.6.1/§15.2: 1xx responses never end the connection; no close here.
        tokens = self._connection_tokens(conn, True, False)
        head = write_head(
            self._status_line(event),
            event.headers.fields,
            self._conn_fields_to_write(conn, True),
            [t for t in tokens if t != b"close"],
            b"",
        )
        if switching:
            self._request = None
            self._switch()
        return head

    @staticmethod
    def _status_line(event: InformationalResponse | Response) -> bytes:
        reason = event.reason
        if not reason:
            line = _STATUS_LINES.get(event.status_code)
            if line is not None:
                return line
        elif not _REASON_RE.fullmatch(reason):
            raise InvalidMessageToSend(f"invalid reason-phrase {reason!r}")
        return b"HTTP/1.1 %d %s" % (event.status_code, reason)

    def _send_response(self, event: Response) -> bytes:
        if self.role is not Role.SERVER:
            raise InvalidSendState("only a server sends responses")
        request = self._request
        if self._write is not State.IDLE or (request is None and self._read is not State.ERROR
                                             and self._read is not State.IDLE):
            raise InvalidSendState(f"cannot send a response now (writer {self._write.name})")
        status = event.status_code
        if not 200 <= status <= 999:
            raise InvalidMessageToSend(f"{status} is not a final status")
        conn = event.connection
        lengths = self._check_fields(event.headers, conn)
        chunked = self._wants_chunked(conn)
        if chunked and lengths:
            raise FramingMismatch("both Content-Length and chunked requested")
        method = request.method if request is not None else b"GET"
        peer_10 = request is None or request.http_version == b"1.0"
        framing_line = b""
        if method == b"CONNECT" and status < 300:
            if lengths or chunked:
                raise FramingMismatch("a 2xx response to CONNECT has no framing fields "
                                      "(RFC 9110 §9.3.6)")
            framing = Framing.TUNNEL
        elif status in (204, 304) or method == b"HEAD":
            if lengths and status == 204:
                raise FramingMismatch("a 204 response MUST NOT carry Content-Length "
                                      "(RFC 9110 §8.6)")
            framing = Framing.NO_BODY
        elif lengths:
            framing = Framing.LENGTH
        elif not peer_10:
            framing = Framing.CHUNKED
            framing_line = b"Transfer-Encoding: chunked"
        else:
            framing = Framing.UNTIL_CLOSE  # never chunked to an HTTP/1.0 peer
        persist = (
            self._persist
            and request is not None
            and not conn.close
            and framing is not Framing.UNTIL_CLOSE
            and self._read is not State.ERROR
        )
        tokens = self._connection_tokens(conn, persist, peer_10)
        if framing is Framing.TUNNEL:
            tokens = [t for t in tokens if t not in (b"close", b"keep-alive")]
        head = write_head(
            self._status_line(event),
            event.headers.fields,
            self._conn_fields_to_write(conn, persist),
            tokens,
            framing_line,
        )
        if framing is Framing.TUNNEL:
            if self._read not in (State.PAUSED, State.DONE):
                raise InvalidSendState("cannot open a tunnel before the CONNECT request is read")
            self._request = None
            self._switch()
            return head
        self._persist = persist
        if framing is Framing.LENGTH:
            self._wbody = BodyWriter(framing, self._length(lengths))
        else:
            self._wbody = BodyWriter(framing, discard=method == b"HEAD")
        self._write = transition(self._write, Trigger.HEAD)
        return head

    def _send_end(self, event: EndOfMessage) -> bytes:
        if self._write is not State.BODY:
            raise InvalidSendState(f"cannot send EndOfMessage in state {self._write.name}")
        data = self._wbody.end(event.trailers.fields)
        if self.role is Role.SERVER:
            self._request = None
            if not self._persist:
                self._write = transition(self._write, Trigger.END_LAST)
                return data
            self._write = transition(self._write, Trigger.END)
            if self._read is State.PAUSED:
                self._read = transition(self._read, Trigger.RESUME)
            else:
                self._response_done = True  # the request body is still arriving
            return data
        request = self._outstanding[-1]
        if not self._persist:
            self._write = transition(self._write, Trigger.END_LAST)
        elif request.method == b"CONNECT" or _sends_upgrade(request.connection):
            self._write = transition(self._write, Trigger.PAUSE)
        else:
            self._write = transition(self._write, Trigger.END)
        return data
