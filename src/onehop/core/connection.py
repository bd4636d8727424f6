"""One HTTP/1.x connection, sans I/O: bytes in, events out; events in, bytes out.

:class:`Connection` keeps two role-blind state machines (:mod:`state`), one for
what we write and one for what we read, and applies the role rules next to
them: a server yields pipelined requests one at a time, each only after the
previous response is complete; a client may pipeline and remembers which
requests are unanswered. Every change of either state is a look-up in the
transition table, so a change the table lacks fails at once.

Nothing else is decided here. Each protocol rule is one function in its own
module, called for every message with no check of ours in front of it: framing
(:mod:`~onehop.core.framing`), persistence (:mod:`~onehop.core.persistence`),
the hop-by-hop split (:mod:`~onehop.core.headers`), the Host and request-target
rules (:mod:`~onehop.core.target`, through the head parser for the target).
What a head we send holds, and the checks of what we are asked to send, are
:mod:`~onehop.core.head`'s, which calls the same framing and persistence modules.
"""

from __future__ import annotations

import enum
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
from onehop.core.framing import Framing, request_framing, response_framing
from onehop.core.head import (
    fields_to_send,
    informational_head,
    reason_phrase,
    request_to_send,
    response_to_send,
)
from onehop.core.headers import (
    EMPTY_HEADERS,
    NO_CONNECTION_INFO,
    ConnectionInfo,
    Headers,
    scan,
    split_scanned,
)
from onehop.core.native import INTERPRETED
from onehop.core.native import new_instance as _new
from onehop.core.persistence import persists_after
from onehop.core.reader import DEFAULT_LIMITS, ChunkedReader, HeadParser, Limits
from onehop.core.state import NEXT, State, Trigger
from onehop.core.target import check_host
from onehop.core.writer import NO_BODY_WRITER, BodyWriter
from onehop.errors import (
    BodyTooLarge,
    IncompleteMessage,
    InvalidMessageToSend,
    InvalidSendState,
    ProtocolError,
    RemoteProtocolError,
    UnexpectedResponse,
)

__all__ = ["Connection", "Role", "reason_phrase"]


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

# The transition table, one row per trigger: ``self._read = _ON_HEAD[self._read]``
# is the HEAD transition of the reader, and a KeyError if the table has none.
_ON_HEAD: Final = NEXT[Trigger.HEAD]
_ON_END: Final = NEXT[Trigger.END]
_ON_END_LAST: Final = NEXT[Trigger.END_LAST]
_ON_PAUSE: Final = NEXT[Trigger.PAUSE]
_ON_RESUME: Final = NEXT[Trigger.RESUME]
_ON_SWITCH: Final = NEXT[Trigger.SWITCH]
_ON_CLOSE: Final = NEXT[Trigger.CLOSE]
_ON_FAIL: Final = NEXT[Trigger.FAIL]

_NAME: Final = itemgetter(0)


def _offers_upgrade(conn: ConnectionInfo) -> bool:
    """A received message offers Upgrade only when Connection lists it (RFC 9110 §7.8)."""
    return b"upgrade" in conn.options and b"upgrade" in conn.fields


def _sends_upgrade(conn: ConnectionInfo) -> bool:
    """A message we send offers Upgrade when it carries the field: the writer lists it."""
    return conn is not NO_CONNECTION_INFO and b"upgrade" in map(_NAME, conn.fields.fields)


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
        "_buf", "_chunked", "_eof", "_error", "_head", "_http10_keep_alive", "_intermediary",
        "_is_server", "_limits", "_outstanding", "_persist", "_read", "_request",
        "_response_done", "_rframing", "_rleft", "_wbody", "_write", "role",
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
        self._http10_keep_alive = http10_keep_alive
        self._buf = bytearray()
        self._eof = False
        self._head = HeadParser(limits, is_request=role is Role.SERVER)
        self._read = _IDLE
        self._write = _IDLE
        # The connection may still persist: our keep_alive setting, and no message
        # sent or received has ended it yet (it only ever goes from True to False).
        self._persist = keep_alive
        self._error: ProtocolError | None = None
        self._rframing = _NO_BODY
        self._rleft = 0
        self._chunked: ChunkedReader | None = None
        self._wbody = NO_BODY_WRITER
        # server: the request being answered (None once its response is complete)
        self._request: Request | None = None
        self._response_done = False
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
        return self._write in (_DONE, _CLOSED, _ERROR) or (
            self._read in (_DONE, _CLOSED, _ERROR)
            and not (self._is_server and self._request is not None))

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
        return not self._is_server and self._write is _IDLE and self._persist

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
                framing = self._rframing
                if framing is _NO_BODY:
                    return self._end_read(EMPTY_HEADERS)
                if framing is _CHUNKED:
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
            self._read = _ON_CLOSE[state]
            return ConnectionClosed()
        return PAUSED

    def _fail_read(self, exc: ProtocolError) -> None:
        self._read = _ON_FAIL[self._read]
        self._error = exc
        self._persist = False

    def _closed_between_messages(self) -> Event:
        if self._buf:
            raise IncompleteMessage("connection closed inside a message head")
        self._read = _ON_CLOSE[self._read]
        return ConnectionClosed()

    def _read_request(self) -> Event | _Sentinel:
        got = self._head.take(self._buf)
        if got is None:
            return self._closed_between_messages() if self._eof else NEED_DATA
        (method, target, minor), fields = got
        version = b"1.0" if minor == b"0" else b"1.1"  # (RFC 9110 §2.5: 1.x is 1.1)
        hits, special = scan(fields)
        # RFC 9112 §3.2 (Host), then §6.3 (framing), then RFC 9110 §7.6.1 (the split):
        # in this order, so that the first fault of a message is the one named.
        check_host(special.get(b"host") if special is not None else None, version)
        framing, length = request_framing(special, version)
        headers, conn = split_scanned(fields, special, hits)
        if framing is _NO_BODY:
            self._rframing = _NO_BODY  # (nothing for _start_body to set up)
        else:
            self._start_body(framing, length)
        if not persists_after(version, conn.options, True, self._intermediary,
                              self._http10_keep_alive):
            self._persist = False
        if INTERPRETED:  # (the constructor without its frame: see core.native)
            request = _new(Request)
            request.method = method
            request.target = target
            request.headers = headers
            request.connection = conn
            request.http_version = version
        else:
            request = Request(method, target, headers, conn, version)
        self._request = request
        self._response_done = False
        self._read = _ON_HEAD[self._read]
        return request

    def _read_response(self) -> Event | _Sentinel:
        outstanding = self._outstanding
        if not outstanding:
            # Nothing asked: whatever arrives (a 408, garbage) is not parsed;
            # a pool sees ``buffered``/EOF and discards the connection.
            if self._eof and not self._buf:
                return self._closed_between_messages()
            return PAUSED
        got = self._head.take(self._buf)
        if got is None:
            return self._closed_between_messages() if self._eof else NEED_DATA
        (minor, code, phrase), fields = got
        version = b"1.0" if minor == b"0" else b"1.1"  # (RFC 9110 §2.5: 1.x is 1.1)
        status = int(code)
        reason = phrase or b""
        hits, special = scan(fields)
        headers, conn = split_scanned(fields, special, hits)
        request = outstanding[0]
        if status < 200:
            event = InformationalResponse(status, headers, reason, conn, version)
            if status == 101:
                if not _sends_upgrade(request.connection):
                    raise UnexpectedResponse("101 Switching Protocols without an Upgrade offer")
                outstanding.popleft()
                self._switch()
            return event
        framing, length = response_framing(special, version, request.method, status)
        if INTERPRETED:  # (the constructor without its frame: see core.native)
            response = _new(Response)
            response.status_code = status
            response.headers = headers
            response.reason = reason
            response.connection = conn
            response.http_version = version
        else:
            response = Response(status, headers, reason, conn, version)
        if framing is _TUNNEL:
            outstanding.popleft()
            self._switch()
            return response
        # A body that runs to close ends the connection (RFC 9112 §6.3 (7)).
        if framing is _UNTIL_CLOSE or not persists_after(
                version, conn.options, False, False, self._http10_keep_alive):
            self._persist = False
        self._start_body(framing, length)
        self._read = _ON_HEAD[self._read]
        return response

    def _start_body(self, framing: Framing, length: int) -> None:
        self._rframing = framing
        limit = self._limits.max_body_size
        if limit is not None and framing is _LENGTH and length > limit:
            raise BodyTooLarge(f"Content-Length {length} exceeds the limit of {limit} bytes")
        self._rleft = length
        self._chunked = ChunkedReader(self._limits) if framing is _CHUNKED else None

    def _read_body(self) -> Event | _Sentinel:
        framing = self._rframing
        buf = self._buf
        if framing is _LENGTH:
            left = self._rleft
            if left == 0:
                return self._end_read(EMPTY_HEADERS)
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
            if INTERPRETED:  # (the constructor without its frame: see core.native)
                event = _new(Data)
                event.data = data
                return event
            return Data(data)
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
                return self._end_read(EMPTY_HEADERS)
            return NEED_DATA
        return self._end_read(EMPTY_HEADERS)

    def _read_chunked(self) -> Event | _Sentinel:
        assert self._chunked is not None
        got = self._chunked.read(self._buf, self._eof)
        if got is None:
            return NEED_DATA
        if isinstance(got, bytes):
            if INTERPRETED:  # (the constructor without its frame: see core.native)
                event = _new(Data)
                event.data = got
                return event
            return Data(got)
        return self._end_read(Headers.from_parsed(got) if got else EMPTY_HEADERS)

    def _end_read(self, trailers: Headers) -> EndOfMessage:
        """The message we read is complete: move the reader on, and the writer with it.

        Server: the next request is read only once the response to this one is
        complete (PAUSE, or END if it already is); after ``close`` nothing more
        (END_LAST, RFC 9112 §9.6). Client: a persisting connection reads the next
        response (END) and, after an answered CONNECT or Upgrade that did not
        switch, writes again (RESUME); otherwise both directions are done.
        """
        if INTERPRETED:  # (the constructor without its frame: see core.native)
            end = _new(EndOfMessage)
            end.trailers = trailers
        else:
            end = EndOfMessage(trailers)
        if self._is_server:
            if not self._persist:
                self._read = _ON_END_LAST[self._read]
            elif self._response_done:
                self._read = _ON_END[self._read]
            else:
                self._read = _ON_PAUSE[self._read]
            return end
        request = self._outstanding.popleft()
        if self._persist:
            self._read = _ON_END[self._read]
            if self._write is _PAUSED and (
                request.method == b"CONNECT" or _sends_upgrade(request.connection)
            ):
                self._write = _ON_RESUME[self._write]
        else:
            self._read = _ON_END_LAST[self._read]
            if self._write is _IDLE or self._write is _PAUSED:
                self._write = _ON_END_LAST[self._write]
        return end

    def _switch(self) -> None:
        self._read = _ON_SWITCH[self._read]
        self._write = _ON_SWITCH[self._write]

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
            if INTERPRETED:
                # (BodyWriter.data's commonest cases without its frame, see core.native;
                # tests/core/test_body_writer.py checks they agree with it.)
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
            self._write = _ON_CLOSE[self._write]
            return b""
        raise InvalidSendState(f"cannot send {type(event).__name__}")

    def send_failed(self) -> None:
        """Tell the connection that writing failed; it is unusable from now on."""
        self._write = _ON_FAIL[self._write]
        self._persist = False

    def _send_request(self, event: Request) -> bytes:
        if self._is_server:
            raise InvalidSendState("only a client sends requests")
        if self._write is not _IDLE or (not self._persist and self._outstanding):
            raise InvalidSendState(
                f"cannot send a request now (writer {self._write.name}"
                + (", connection closing)" if not self._persist else ")")
            )
        head, self._wbody, self._persist = request_to_send(event, self._persist)
        self._outstanding.append(event)
        self._write = _ON_HEAD[self._write]
        return head

    def _send_informational(self, event: InformationalResponse) -> bytes:
        request = self._request
        if not self._is_server or request is None or self._write is not _IDLE:
            raise InvalidSendState("a 1xx response needs a request awaiting its response")
        status = event.status_code
        if not 100 <= status <= 199:
            raise InvalidMessageToSend(f"{status} is not a 1xx status")
        if request.http_version == b"1.0":
            raise InvalidSendState("a server MUST NOT send a 1xx response to an HTTP/1.0 client "
                                   "(RFC 9110 §15.2)")
        conn = event.connection
        fields_to_send(event.headers, conn, False)
        switching = status == 101
        if switching:
            if not _offers_upgrade(request.connection) or b"upgrade" not in conn.fields:
                raise InvalidMessageToSend("101 needs an Upgrade offer and an Upgrade field")
            if self._read not in (_PAUSED, _DONE):
                raise InvalidSendState("cannot switch protocols before the request is complete")
        head = informational_head(event)
        if switching:
            self._request = None
            self._switch()
        return head

    def _send_response(self, event: Response) -> bytes:
        if not self._is_server:
            raise InvalidSendState("only a server sends responses")
        request = self._request
        if self._write is not _IDLE or (request is None and self._read is not _ERROR
                                             and self._read is not _IDLE):
            raise InvalidSendState(f"cannot send a response now (writer {self._write.name})")
        head, framing, persist, wire = response_to_send(event, request, self._persist)
        if framing is _TUNNEL:
            if self._read not in (_PAUSED, _DONE):
                raise InvalidSendState("cannot open a tunnel before the CONNECT request is read")
            self._request = None
            self._switch()
            return head
        self._wbody = BodyWriter.to_send(
            framing, wire, request is not None and request.method == b"HEAD")
        self._persist = persist
        self._write = _ON_HEAD[self._write]
        return head

    def _send_end(self, event: EndOfMessage) -> bytes:
        """End the message we write, and move the writer on (the reader with it).

        Server: after ``close`` nothing more is written (END_LAST, RFC 9112
        §9.6), else the next response may follow (END) and a reader waiting for
        this response reads on (RESUME). Client: after a CONNECT or an Upgrade
        offer still unanswered, nothing is written until the answer is read (PAUSE).
        """
        if self._write is not _BODY:
            raise InvalidSendState(f"cannot send EndOfMessage in state {self._write.name}")
        body = self._wbody
        trailers = event.trailers.fields
        if INTERPRETED and not trailers and (body.framing is _NO_BODY or (
                body.framing is _LENGTH and not body.remaining)):
            data = b""  # (BodyWriter.end's commonest cases without its frame: core.native)
        else:
            data = body.end(trailers)
        if self._is_server:
            self._request = None
            if not self._persist:
                self._write = _ON_END_LAST[self._write]
                return data
            self._write = _ON_END[self._write]
            if self._read is _PAUSED:
                self._read = _ON_RESUME[self._read]
            else:
                self._response_done = True  # the request body is still arriving
            return data
        # The request ending is the newest one sent; none is outstanding when its
        # response came before its body ended (RFC 9112 §9.5): nothing to wait for.
        outstanding = self._outstanding
        if not self._persist:
            self._write = _ON_END_LAST[self._write]
        elif outstanding and (outstanding[-1].method == b"CONNECT"
                              or _sends_upgrade(outstanding[-1].connection)):
            self._write = _ON_PAUSE[self._write]
        else:
            self._write = _ON_END[self._write]
        return data
