"""WebSocket framing after the handshake, on a maintained sans-I/O library (RFC 6455 §5).

The handshake is onehop's (the request parsed by the core, checked in
:mod:`onehop.server.websocket`, the ``101`` written by the core); what follows it,
frames, masking, fragmentation, ping/pong, the closing handshake and
``permessage-deflate`` (RFC 7692), is the library's: ``websockets``' sans-I/O
``ServerProtocol`` or ``wsproto``'s ``Connection``, chosen with ``--ws``. Both sit
behind :class:`Engine`, so the ASGI side is written once. The engine assembles
fragmented messages and enforces ``max_size`` on whole messages (RFC 6455 §7.4.1,
1009), which neither library does for fragments on its own.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

#: ``--ws`` values.
WS_CHOICES: Final = ("auto", "none", "websockets", "wsproto")
#: Close codes (RFC 6455 §7.4.1).
NORMAL: Final = 1000
GOING_AWAY: Final = 1001
PROTOCOL_ERROR: Final = 1002
TOO_BIG: Final = 1009
INTERNAL_ERROR: Final = 1011
SERVICE_RESTART: Final = 1012
#: No close frame came (RFC 6455 §7.1.5): the connection just ended.
ABNORMAL: Final = 1006

logger: Final = logging.getLogger("onehop.error")


@dataclass(slots=True)
class Message:
    """A whole message (fragments assembled): ``str`` for text, ``bytes`` for binary."""

    data: str | bytes


@dataclass(slots=True)
class Closed:
    """The peer sent a close frame (the engine has queued its reply), or broke the
    protocol (the engine has queued a close with ``code``)."""

    code: int
    reason: str


class Pong:
    """The peer answered a ping (keep-alive is satisfied)."""


PONG: Final = Pong()
Event = Message | Closed | Pong


class Engine(Protocol):
    """Frames for one WebSocket after the handshake.

    Every method returns the bytes to write (possibly empty). ``closing``: a close
    frame went out (ours or our reply): send nothing more. ``done``: the closing
    handshake is over, the server closes the TCP connection (RFC 6455 §7.1.1).
    """

    closing: bool
    done: bool

    def receive(self, data: bytes) -> tuple[list[Event], bytes]: ...

    def send(self, data: str | bytes) -> bytes: ...

    def close(self, code: int, reason: str = "") -> bytes: ...

    def ping(self, payload: bytes) -> bytes: ...


def available(choice: str) -> str | None:
    """The engine ``--ws`` *choice* names, if installed; ``auto`` prefers ``websockets``
    (measured faster here, see the README), then ``wsproto``; None: no WebSocket."""
    if choice == "none":
        return None
    for name in (("websockets", "wsproto") if choice == "auto" else (choice,)):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def make_engine(name: str, extensions: Sequence[str], *, max_size: int,
                deflate: bool) -> tuple[Engine, str | None]:
    """A new engine of kind *name*, and the ``Sec-WebSocket-Extensions`` value agreed
    from the client's offers (*extensions*), if any."""
    if name == "websockets":
        ws = WebsocketsEngine(extensions, max_size=max_size, deflate=deflate)
        return ws, ws.extensions_header
    wp = WsprotoEngine(extensions, max_size=max_size, deflate=deflate)
    return wp, wp.extensions_header


class _Assembler:
    """Whole messages out of fragments, and the ``max_size`` rule on them."""

    __slots__ = ("max_size", "parts", "size", "text")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.parts: list[bytes] = []
        self.size = 0
        self.text = False

    def add(self, data: bytes, text: bool | None, fin: bool) -> Message | None:
        """Add a frame's (or event's) payload; return the message once *fin*.

        *text* is True/False on a message's first piece, None on a continuation.

        Raises:
            OverflowError: the message grew past ``max_size``.
        """
        if text is not None:
            self.text = text
        self.size += len(data)
        if self.size > self.max_size:
            raise OverflowError(f"message larger than {self.max_size} bytes")
        if not fin:
            self.parts.append(data)
            return None
        if self.parts:
            self.parts.append(data)
            data = b"".join(self.parts)
            self.parts = []
        self.size = 0
        if self.text:
            return Message(data.decode("utf-8"))  # (both libraries check UTF-8 already)
        return Message(data)


class WebsocketsEngine:
    """``websockets``' sans-I/O protocol, started in the OPEN state."""

    __slots__ = ("_assembler", "_ops", "_proto", "closing", "done", "extensions_header")

    def __init__(self, offers: Sequence[str], *, max_size: int, deflate: bool) -> None:
        from websockets.datastructures import Headers
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
        from websockets.frames import Opcode
        from websockets.protocol import State
        from websockets.server import ServerProtocol

        self._ops = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG, Opcode.CLOSE)
        factories = [ServerPerMessageDeflateFactory()] if deflate else []
        proto = ServerProtocol(extensions=factories, max_size=max_size, state=State.OPEN,
                               logger=logger)
        self.extensions_header: str | None = None
        if offers and factories:
            header, proto.extensions = proto.process_extensions(
                Headers([("Sec-WebSocket-Extensions", offer) for offer in offers]))
            self.extensions_header = header
        self._proto = proto
        self._assembler = _Assembler(max_size)
        self.closing = False
        self.done = False

    def _out(self) -> bytes:
        chunks = self._proto.data_to_send()
        if chunks and chunks[-1] == b"":  # (its "close the TCP connection now")
            self.done = True
        return b"".join(chunks)

    def receive(self, data: bytes) -> tuple[list[Event], bytes]:
        text_op, binary_op, cont_op, pong_op, close_op = self._ops
        proto = self._proto
        proto.receive_data(data)
        events: list[Event] = []
        received: list[Any] = proto.events_received()  # (Frames, once OPEN)
        for frame in received:
            opcode = frame.opcode
            try:
                if opcode is text_op or opcode is binary_op:
                    message = self._assembler.add(bytes(frame.data), opcode is text_op,
                                                  frame.fin)
                elif opcode is cont_op:
                    message = self._assembler.add(bytes(frame.data), None, frame.fin)
                elif opcode is pong_op:
                    events.append(PONG)
                    continue
                elif opcode is close_op:
                    rcvd = proto.close_rcvd
                    events.append(Closed(rcvd.code if rcvd is not None else 1005,
                                         rcvd.reason if rcvd is not None else ""))
                    self.closing = True
                    continue
                else:
                    continue  # PING: the protocol queued the pong itself
            except OverflowError as exc:
                events.append(Closed(TOO_BIG, str(exc)))
                return events, self.close(TOO_BIG, "message too big")
            if message is not None:
                events.append(message)
        sent = proto.close_sent
        if sent is not None and not self.closing:
            # The protocol failed the connection itself (a bad frame, a frame over
            # max_size): it sent its close frame.
            events.append(Closed(sent.code, sent.reason))
            self.closing = True
        return events, self._out()

    def send(self, data: str | bytes) -> bytes:
        if isinstance(data, str):
            self._proto.send_text(data.encode("utf-8"))
        else:
            self._proto.send_binary(data)
        return self._out()

    def close(self, code: int, reason: str = "") -> bytes:
        if not self.closing:
            self.closing = True
            self._proto.send_close(code, reason)
        return self._out()

    def ping(self, payload: bytes) -> bytes:
        self._proto.send_ping(payload)
        return self._out()


class WsprotoEngine:
    """``wsproto``'s connection, built for the server side after our handshake."""

    __slots__ = ("_assembler", "_conn", "_ev", "closing", "done", "extensions_header")

    def __init__(self, offers: Sequence[str], *, max_size: int, deflate: bool) -> None:
        from wsproto import events as ev
        from wsproto.connection import Connection, ConnectionType
        from wsproto.extensions import Extension, PerMessageDeflate
        from wsproto.handshake import server_extensions_handshake

        extensions: list[Extension] = [PerMessageDeflate()] if deflate else []
        accepted = server_extensions_handshake(offers, extensions) if offers else None
        self.extensions_header = accepted.decode("ascii") if accepted else None
        self._conn = Connection(ConnectionType.SERVER, extensions=extensions)
        self._ev: Any = ev
        self._assembler = _Assembler(max_size)
        self.closing = False
        self.done = False

    def receive(self, data: bytes) -> tuple[list[Event], bytes]:
        from wsproto.utilities import RemoteProtocolError

        ev = self._ev
        conn = self._conn
        out: list[bytes] = []
        events: list[Event] = []
        conn.receive_data(data)
        try:
            event: Any
            for event in conn.events():
                kind = type(event)
                if kind is ev.TextMessage or kind is ev.BytesMessage:
                    text = kind is ev.TextMessage
                    message = self._assembler.add(
                        event.data.encode("utf-8") if text else bytes(event.data), text,
                        event.message_finished)
                    if message is not None:
                        events.append(message)
                elif kind is ev.Ping:
                    out.append(conn.send(event.response()))
                elif kind is ev.Pong:
                    events.append(PONG)
                elif kind is ev.CloseConnection:
                    events.append(Closed(event.code, event.reason or ""))
                    if not self.closing:
                        self.closing = True
                        out.append(conn.send(event.response()))
                    self.done = True
        except OverflowError as exc:
            events.append(Closed(TOO_BIG, str(exc)))
            out.append(self.close(TOO_BIG, "message too big"))
        except RemoteProtocolError as exc:
            events.append(Closed(PROTOCOL_ERROR, str(exc)))
            out.append(self.close(PROTOCOL_ERROR, "protocol error"))
        return events, b"".join(out)

    def send(self, data: str | bytes) -> bytes:
        return bytes(self._conn.send(self._ev.Message(data=data)))

    def close(self, code: int, reason: str = "") -> bytes:
        if self.closing:
            return b""
        self.closing = True
        return bytes(self._conn.send(self._ev.CloseConnection(code=code, reason=reason)))

    def ping(self, payload: bytes) -> bytes:
        return bytes(self._conn.send(self._ev.Ping(payload=payload)))
