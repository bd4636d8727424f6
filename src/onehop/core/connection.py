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
from operator import itemgetter
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
from onehop.core.framing import (
    MAX_CONTENT_LENGTH_DIGITS,
    Framing,
    is_chunked,
    message_framing,
    parse_content_length,
)
from onehop.core.headers import (
    EMPTY_HEADERS,
    NO_CONNECTION_INFO,
    TOKEN_RE,
    ConnectionInfo,
    Field,
    Headers,
    _new,
    _scan,
    _split,
)
from onehop.core.persistence import persists_after
from onehop.core.reader import (
    DEFAULT_LIMITS,
    REQUEST_LINE_CRLF_RE,
    STATUS_LINE_CRLF_RE,
    ChunkedReader,
    HeadParser,
    Limits,
    parse_fields,
    parse_request_line,
    parse_status_line,
)
from onehop.core.state import State, Trigger, transition
from onehop.core.target import _HOST_RE, check_host, check_request_target
from onehop.core.writer import (
    CHUNKED_WRITER,
    NO_BODY_WRITER,
    BodyWriter,
    Vetted,
    connection_lines,
    reject_hop_by_hop,
    vet,
    write_head,
)
from onehop.errors import (
    BodyTooLarge,
    FramingMismatch,
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


# Module-level aliases: a global load is cheaper than an Enum attribute on the hot path.
_IDLE: Final = State.IDLE
_BODY: Final = State.BODY
_PAUSED: Final = State.PAUSED
_DONE: Final = State.DONE
_ERROR: Final = State.ERROR
_CLOSED: Final = State.CLOSED
_NO_BODY: Final = Framing.NO_BODY
_LENGTH: Final = Framing.LENGTH
_CHUNKED: Final = Framing.CHUNKED
_UNTIL_CLOSE: Final = Framing.UNTIL_CLOSE
_TUNNEL: Final = Framing.TUNNEL

_NAME: Final = itemgetter(0)
_KEEP_ALIVE_ONLY: Final = frozenset({b"keep-alive"})
#: Methods that need no token check when sent (a set lookup instead of a regex).
_COMMON_METHODS: Final = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE"}
)

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
    return conn is not NO_CONNECTION_INFO and b"upgrade" in map(_NAME, conn.fields._fields)


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
        "_is_server",
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
        self._is_server = role is Role.SERVER
        self._limits = limits
        self._intermediary = intermediary
        self._allow_keep_alive = keep_alive
        self._http10_keep_alive = http10_keep_alive
        self._buf = bytearray()
        self._eof = False
        self._head = HeadParser(limits, is_request=role is Role.SERVER)
        self._read = _IDLE
        self._write = _IDLE
        self._persist = keep_alive
        self._error: ProtocolError | None = None
        self._rframing = _NO_BODY
        self._rleft = 0
        self._chunked: ChunkedReader | None = None
        self._wbody = NO_BODY_WRITER
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
        return self._write in (_DONE, _CLOSED, _ERROR) or (self._read in (
            _DONE,
            _CLOSED,
            _ERROR,
        ) and not (self.role is Role.SERVER and self._request is not None))

    @property
    def is_idle(self) -> bool:
        """Both directions between messages, nothing buffered, nothing outstanding.

        A client pool returns a connection only in this state (RFC 9112 §9.3).
        """
        return (
            self._write is _IDLE
            and self._read is _IDLE
            and not self._outstanding
            and not self._buf
            and not self._eof
            and self._persist
        )

    @property
    def can_send_request(self) -> bool:
        """Client: whether a new request may be written now (pipelining allowed)."""
        return self.role is Role.CLIENT and self._write is _IDLE and self._persist

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
    def body_left(self) -> int | None:
        """Content bytes of the message being read still to come: 0 when none (or between
        messages), None when unknown (chunked, or delimited by the connection's close)."""
        if self._read is not _BODY or self._rframing is _NO_BODY:
            return 0
        if self._rframing is _LENGTH:
            return self._rleft
        return None

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
            if state is _BODY:
                if self._rframing is _NO_BODY and self._is_server:
                    # (_end_read inlined for the commonest event: a bodiless request ends.)
                    self._head._scanned = 0
                    if not self._persist:
                        self._read = _DONE
                    elif self._response_done:
                        self._read = _IDLE
                    else:
                        self._read = _PAUSED
                    end = _new(EndOfMessage)
                    end.trailers = EMPTY_HEADERS
                    return end
                if self._rframing is _CHUNKED:
                    return self._read_chunked()
                return self._read_body()
            if state is _IDLE:
                if self._is_server:
                    return self._read_request()
                return self._read_response()
        except RemoteProtocolError as exc:
            self._fail_read(exc)
            raise
        if state is _ERROR:
            assert self._error is not None
            raise self._error
        if state is _CLOSED:
            return ConnectionClosed()
        if state is _DONE and self._eof and not self._buf:
            self._read = transition(state, Trigger.CLOSE)
            return ConnectionClosed()
        return PAUSED

    def _fail_read(self, exc: ProtocolError) -> None:
        self._read = _ERROR
        self._error = exc
        self._persist = False

    def _closed_between_messages(self) -> Event:
        if self._buf:
            raise IncompleteMessage("connection closed inside a message head")
        self._read = transition(self._read, Trigger.CLOSE)
        return ConnectionClosed()

    def _read_request(self) -> Event | _Sentinel:
        buf = self._buf
        head = self._head
        limits = self._limits
        # Fast path (HeadParser.take_head_fast); the slow path below names any fault.
        fast = head.take_head_fast(buf, REQUEST_LINE_CRLF_RE)
        if fast is not None:
            (method, target, minor), fields = fast
            version = b"1.0" if minor == b"0" else b"1.1"
            if target[:1] != b"/" or method == b"CONNECT" or b"#" in target:
                check_request_target(method, target)
        else:
            got = head.take_head(buf)
            if got is None:
                return self._closed_between_messages() if self._eof else NEED_DATA
            start, block = got
            method, target, version = parse_request_line(start)
            check_request_target(method, target)
            fields = parse_fields(block, limits)
        hits, special = _scan(fields)
        if special is None:
            check_host(None, version)
            framing, length = _NO_BODY, 0
        else:
            hosts = special.get(b"host")
            if hosts is None or len(hosts) != 1 or _HOST_RE.fullmatch(hosts[0]) is None:
                check_host(hosts, version)  # (names the fault, or accepts HTTP/1.0 without)
            cl = special.get(b"content-length")
            if b"transfer-encoding" in special:
                framing, length = message_framing(special, version, request_method=method,
                                                  status_code=None)
            elif cl is None:
                framing, length = _NO_BODY, 0
            elif len(cl) == 1 and cl[0].isdigit() and len(cl[0]) <= MAX_CONTENT_LENGTH_DIGITS:
                framing, length = _LENGTH, int(cl[0])  # (what parse_content_length returns)
            else:
                framing, length = _LENGTH, parse_content_length(cl)
        headers, conn = _split(fields, special, hits)
        if framing is not _NO_BODY:
            self._start_body(framing, length)
        else:
            self._rframing = _NO_BODY
        # (HTTP/1.1 without "close" persists, and an HTTP/1.0 keep-alive request to a
        # server honouring it: skip the call on the hot paths.)
        options = conn.options
        if (version == b"1.0" or b"close" in options) and not (
            options == _KEEP_ALIVE_ONLY and self._http10_keep_alive and not self._intermediary
        ) and not persists_after(
            version,
            options,
            is_request=True,
            intermediary=self._intermediary,
            honor_http10_keep_alive=self._http10_keep_alive,
        ):
            self._persist = False
        # (Request's __init__ without its frame: every part is already bytes/Headers.)
        request = _new(Request)
        request.method = method
        request.target = target
        request.headers = headers
        request.connection = conn
        request.http_version = version
        self._request = request
        self._response_done = False
        self._read = _BODY  # (IDLE --HEAD--> BODY)
        return request

    def _read_response(self) -> Event | _Sentinel:
        outstanding = self._outstanding
        if not outstanding:
            # Nothing asked: whatever arrives (a 408, garbage) is not parsed;
            # a pool sees ``buffered``/EOF and discards the connection.
            if self._eof and not self._buf:
                return self._closed_between_messages()
            return PAUSED
        buf = self._buf
        head = self._head
        limits = self._limits
        # Fast path, as in _read_request.
        fast = head.take_head_fast(buf, STATUS_LINE_CRLF_RE)
        if fast is not None:
            (minor, code, reason), fields = fast
            version = b"1.0" if minor == b"0" else b"1.1"
            status = int(code)
            if reason is None:
                reason = b""
        else:
            got = head.take_head(buf)
            if got is None:
                return self._closed_between_messages() if self._eof else NEED_DATA
            start, block = got
            version, status, reason = parse_status_line(start)
            fields = parse_fields(block, limits)
        hits, special = _scan(fields)
        headers, conn = _split(fields, special, hits)
        request = outstanding[0]
        if status < 200:
            event = InformationalResponse(status, headers, reason, conn, version)
            if status == 101:
                if not _sends_upgrade(request.connection):
                    raise UnexpectedResponse("101 Switching Protocols without an Upgrade offer")
                outstanding.popleft()
                self._switch()
            return event
        method = request.method
        te = cl = None
        if special is not None:
            te = special.get(b"transfer-encoding")
            cl = special.get(b"content-length")
        if (
            status == 204 or status == 304 or method == b"HEAD" or method == b"CONNECT"
            or (te is None) == (cl is None)
        ):
            framing, length = message_framing(
                special, version, request_method=method, status_code=status
            )
        # The usual cases of message_framing, with its checks:
        elif te is None:
            assert cl is not None
            if len(cl) == 1 and cl[0].isdigit() and len(cl[0]) <= MAX_CONTENT_LENGTH_DIGITS:
                framing, length = _LENGTH, int(cl[0])
            else:
                framing, length = _LENGTH, parse_content_length(cl)
        elif te == [b"chunked"] and version == b"1.1":
            framing, length = _CHUNKED, 0
        else:
            framing, length = message_framing(
                special, version, request_method=method, status_code=status
            )
        response = _new(Response)
        response.status_code = status
        response.headers = headers
        response.reason = reason
        response.connection = conn
        response.http_version = version
        if framing is _TUNNEL:
            outstanding.popleft()
            self._switch()
            return response
        if framing is _UNTIL_CLOSE or (
            (version == b"1.0" or b"close" in conn.options)
            and not persists_after(version, conn.options, is_request=False,
                                   honor_http10_keep_alive=self._http10_keep_alive)
        ):
            self._persist = False
        self._start_body(framing, length)
        self._read = _BODY  # (IDLE --HEAD--> BODY)
        return response

    def _start_body(self, framing: Framing, length: int) -> None:
        limit = self._limits.max_body_size
        if limit is not None and framing is _LENGTH and length > limit:
            raise BodyTooLarge(f"Content-Length {length} exceeds the limit of {limit} bytes")
        self._rframing = framing
        self._rleft = length
        self._chunked = ChunkedReader(self._limits) if framing is _CHUNKED else None

    def _read_body(self) -> Event | _Sentinel:
        framing = self._rframing
        buf = self._buf
        if framing is _LENGTH:
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
            event = _new(Data)  # (Data's __init__ without its frame)
            event.data = data
            return event
        if framing is _NO_BODY:
            return self._end_read(EndOfMessage())
        if framing is _CHUNKED:
            return self._read_chunked()
        if framing is _UNTIL_CLOSE:
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

    def _read_chunked(self) -> Event | _Sentinel:
        assert self._chunked is not None
        got = self._chunked.read(self._buf, self._eof)
        if got is None:
            return NEED_DATA
        # (Events built without their __init__ frames: the parts are already checked.)
        if isinstance(got, bytes):
            data = _new(Data)
            data.data = got
            return data
        trailers = _new(Headers)
        trailers._fields = got
        trailers._vetted = None
        end = _new(EndOfMessage)
        end.trailers = trailers
        return self._end_read(end)

    def _end_read(self, event: EndOfMessage) -> EndOfMessage:
        # The reader is in BODY here: END -> IDLE, END_LAST -> DONE, PAUSE -> PAUSED.
        self._head._scanned = 0
        if self._is_server:
            if not self._persist:
                self._read = _DONE
            elif self._response_done:
                self._read = _IDLE
            else:
                self._read = _PAUSED
            return event
        request = self._outstanding.popleft()
        if self._persist:
            self._read = _IDLE
            if self._write is _PAUSED and (
                request.method == b"CONNECT" or _sends_upgrade(request.connection)
            ):
                self._write = _IDLE  # (PAUSED --RESUME--> IDLE)
        else:
            self._read = _DONE
            if self._write is _IDLE or self._write is _PAUSED:
                self._write = _DONE
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
            if self._write is not _BODY:
                raise InvalidSendState(f"cannot send Data in state {self._write.name}")
            body = self._wbody
            data = event.data
            # (BodyWriter.data's commonest cases, inlined)
            framing = body.framing
            if framing is _LENGTH and len(data) <= body.remaining:
                body.remaining -= len(data)
                return data
            if framing is _CHUNKED and data:
                return b"%x\r\n%s\r\n" % (len(data), data)
            return body.data(data)
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

    def _check_fields(self, headers: Headers, conn: ConnectionInfo) -> Vetted:
        """Reject hop-by-hop fields passed as end-to-end; return what the writer needs.

        Sets ``self._sent_host`` as a by-product, so the Host rule needs no second pass.
        """
        vetted = headers._vetted or vet(headers)
        nominated = conn.options
        if nominated:  # (empty for the shared NO_CONNECTION_INFO)
            if not nominated.isdisjoint(vetted.names):
                reject_hop_by_hop(headers._fields, nominated)
            for option in nominated:
                if not TOKEN_RE.fullmatch(option):
                    raise InvalidMessageToSend(f"connection option {option!r} is not a token")
        self._sent_host = vetted.has_host
        return vetted

    @staticmethod
    def _connection_tokens(conn: ConnectionInfo, persist: bool, peer_10: bool) -> list[bytes]:
        if not persist:
            tokens = [b"close"]
        elif peer_10:
            tokens = [b"keep-alive"]
        else:
            tokens = []
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

    @classmethod
    def _conn_block(cls, conn: ConnectionInfo, persist: bool, peer_10: bool) -> bytes:
        """The connection-specific lines to write for *conn*, memoized on it.

        They depend only on *conn* and the two flags, and a server sends the
        same few instances (no options; a shared ``Keep-Alive``) again and again.
        """
        memo = conn._wire
        if memo is None:
            memo = conn._wire = [None, None, None, None]
        key = persist + 2 * peer_10
        lines = memo[key]
        if lines is None:
            lines = memo[key] = connection_lines(
                cls._conn_fields_to_write(conn, persist),
                cls._connection_tokens(conn, persist, peer_10),
            )
        return lines

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
        if conn is NO_CONNECTION_INFO or b"transfer-encoding" not in map(
                _NAME, conn.fields._fields):
            return False
        te = conn.fields.get_all(b"transfer-encoding")
        try:
            return is_chunked(te)
        except ProtocolError as exc:
            raise FramingMismatch(f"cannot send Transfer-Encoding: {exc.msg}") from None

    @staticmethod
    def _length(vetted: Vetted) -> int:
        """The length the sent Content-Length fields give (checked when first vetted)."""
        length = vetted.length
        if length is not None:
            return length
        try:
            return parse_content_length(vetted.lengths)
        except ProtocolError as exc:
            raise FramingMismatch(f"cannot send Content-Length: {exc.msg}") from None

    def _send_request(self, event: Request) -> bytes:
        if self._is_server:
            raise InvalidSendState("only a client sends requests")
        if self._write is not _IDLE or (not self._persist and self._outstanding):
            raise InvalidSendState(
                f"cannot send a request now (writer {self._write.name}"
                + (", connection closing)" if not self._persist else ")")
            )
        method, target, version = event.method, event.target, event.http_version
        if method not in _COMMON_METHODS and not TOKEN_RE.fullmatch(method):
            raise InvalidMessageToSend(f"invalid method {method!r}")
        if not _TARGET_RE.fullmatch(target):
            raise InvalidMessageToSend(f"invalid request-target {target!r}")
        if version != b"1.1" and version != b"1.0":
            raise InvalidMessageToSend(f"cannot send HTTP/{version.decode('latin-1')}")
        if target[:1] != b"/" or method == b"CONNECT" or b"#" in target:
            try:
                check_request_target(method, target)
            except ProtocolError as exc:
                raise InvalidMessageToSend(exc.msg) from None
        conn = event.connection
        vetted = self._check_fields(event.headers, conn)
        lengths = vetted.lengths
        if version == b"1.1" and not self._sent_host:
            raise InvalidMessageToSend("an HTTP/1.1 request needs a Host field (RFC 9112 §3.2)")
        chunked = conn is not NO_CONNECTION_INFO and self._wants_chunked(conn)
        if chunked and lengths:
            raise FramingMismatch("both Content-Length and chunked requested")
        if chunked and version == b"1.0":
            raise FramingMismatch("HTTP/1.0 cannot carry chunked content")
        if lengths:
            body = BodyWriter(_LENGTH, self._length(vetted))
        elif chunked:
            body = CHUNKED_WRITER
        else:
            body = NO_BODY_WRITER
        persist = self._persist and self._allow_keep_alive and b"close" not in conn.options
        if conn is NO_CONNECTION_INFO and persist and version == b"1.1" and vetted.block:
            # (write_head's commonest case inlined: no Connection line, no framing line.)
            head = b"%s %s HTTP/1.1\r\n%s\r\n\r\n" % (method, target, vetted.block)
        else:
            head = write_head(
                b"%s %s HTTP/%s" % (method, target, version),
                vetted.block,
                self._conn_block(conn, persist, version == b"1.0"),
                b"Transfer-Encoding: chunked" if chunked else b"",
            )
        self._persist = persist
        self._wbody = body
        self._outstanding.append(event)
        self._write = _BODY  # (IDLE --HEAD--> BODY)
        return head

    def _send_informational(self, event: InformationalResponse) -> bytes:
        request = self._request
        if self.role is not Role.SERVER or request is None or self._write is not _IDLE:
            raise InvalidSendState("a 1xx response needs a request awaiting its response")
        status = event.status_code
        if not 100 <= status <= 199:
            raise InvalidMessageToSend(f"{status} is not a 1xx status")
        if request.http_version == b"1.0":
            raise InvalidSendState("a server MUST NOT send a 1xx response to an HTTP/1.0 client "
                                   "(RFC 9110 §15.2)")
        conn = event.connection
        vetted = self._check_fields(event.headers, conn)
        switching = status == 101
        if switching:
            if not _offers_upgrade(request.connection) or b"upgrade" not in conn.fields:
                raise InvalidMessageToSend("101 needs an Upgrade offer and an Upgrade field")
            if self._read not in (_PAUSED, _DONE):
                raise InvalidSendState("cannot switch protocols before the request is complete")
        # RFC 9110 §7.6.1/§15.2: 1xx responses never end the connection; no close here.
        tokens = self._connection_tokens(conn, True, False)
        head = write_head(
            self._status_line(event),
            vetted.block,
            connection_lines(self._conn_fields_to_write(conn, True),
                             [t for t in tokens if t != b"close"]),
            b"",
        )
        if switching:
            self._request = None
            self._switch()
        return head

    @staticmethod
    def _status_line(event: InformationalResponse | Response) -> bytes:
        reason = event.reason
        # (No phrase, or the customary one, as a relayed answer usually carries: the
        # prebuilt line; any other phrase is checked and kept as given.)
        if not reason or reason == _REASONS.get(event.status_code):
            line = _STATUS_LINES.get(event.status_code)
            if line is not None:
                return line
        if not _REASON_RE.fullmatch(reason):
            raise InvalidMessageToSend(f"invalid reason-phrase {reason!r}")
        return b"HTTP/1.1 %d %s" % (event.status_code, reason)

    def _send_response(self, event: Response) -> bytes:
        if not self._is_server:
            raise InvalidSendState("only a server sends responses")
        request = self._request
        if self._write is not _IDLE or (request is None and self._read is not _ERROR
                                             and self._read is not _IDLE):
            raise InvalidSendState(f"cannot send a response now (writer {self._write.name})")
        status = event.status_code
        if not 200 <= status <= 999:
            raise InvalidMessageToSend(f"{status} is not a final status")
        conn = event.connection
        vetted = self._check_fields(event.headers, conn)
        lengths = vetted.lengths
        chunked = conn is not NO_CONNECTION_INFO and self._wants_chunked(conn)
        if chunked and lengths:
            raise FramingMismatch("both Content-Length and chunked requested")
        method = request.method if request is not None else b"GET"
        peer_10 = request is None or request.http_version == b"1.0"
        framing_line = b""
        if method == b"CONNECT" and status < 300:
            if lengths or chunked:
                raise FramingMismatch("a 2xx response to CONNECT has no framing fields "
                                      "(RFC 9110 §9.3.6)")
            framing = _TUNNEL
        elif status in (204, 304) or method == b"HEAD":
            if lengths and status == 204:
                raise FramingMismatch("a 204 response MUST NOT carry Content-Length "
                                      "(RFC 9110 §8.6)")
            framing = _NO_BODY
        elif lengths:
            framing = _LENGTH
        elif not peer_10:
            framing = _CHUNKED
            framing_line = b"Transfer-Encoding: chunked"
        else:
            framing = _UNTIL_CLOSE  # never chunked to an HTTP/1.0 peer
        persist = (
            self._persist
            and request is not None
            and b"close" not in conn.options
            and framing is not _UNTIL_CLOSE
            and self._read is not _ERROR
        )
        if framing is _TUNNEL:
            tokens = [t for t in self._connection_tokens(conn, persist, peer_10)
                      if t not in (b"close", b"keep-alive")]
            conn_block = connection_lines(self._conn_fields_to_write(conn, persist), tokens)
        else:
            conn_block = self._conn_block(conn, persist, peer_10)
        head = write_head(self._status_line(event), vetted.block, conn_block, framing_line)
        if framing is _TUNNEL:
            if self._read not in (_PAUSED, _DONE):
                raise InvalidSendState("cannot open a tunnel before the CONNECT request is read")
            self._request = None
            self._switch()
            return head
        self._persist = persist
        if framing is _LENGTH:
            self._wbody = BodyWriter(framing, self._length(vetted))
        elif method == b"HEAD":
            self._wbody = BodyWriter(framing, discard=True)
        elif framing is _CHUNKED:
            self._wbody = CHUNKED_WRITER
        else:
            self._wbody = BodyWriter.for_framing(framing)
        self._write = _BODY  # (IDLE --HEAD--> BODY)
        return head

    def _send_end(self, event: EndOfMessage) -> bytes:
        # The writer is in BODY here: END -> IDLE, END_LAST -> DONE, PAUSE -> PAUSED.
        if self._write is not _BODY:
            raise InvalidSendState(f"cannot send EndOfMessage in state {self._write.name}")
        body = self._wbody
        trailers = event.trailers._fields
        if not trailers and (body.framing is _NO_BODY or (
                body.framing is _LENGTH and not body.remaining)):
            data = b""  # (BodyWriter.end's commonest cases, inlined)
        else:
            data = body.end(trailers)
        if self._is_server:
            self._request = None
            if not self._persist:
                self._write = _DONE
                return data
            self._write = _IDLE
            if self._read is _PAUSED:
                self._read = _IDLE  # (PAUSED --RESUME--> IDLE)
            else:
                self._response_done = True  # the request body is still arriving
            return data
        request = self._outstanding[-1]
        if not self._persist:
            self._write = _DONE
        elif request.method == b"CONNECT" or _sends_upgrade(request.connection):
            self._write = _PAUSED
        else:
            self._write = _IDLE
        return data
