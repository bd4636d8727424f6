"""A WebSocket client over one HTTP/2 stream (RFC 8441), for tests.

No Python client library speaks RFC 8441, so this one is put together from two
that each do their half and share no code with onehop: the probe's raw HTTP/2
client (:class:`onehop.probe.h2wire.H2Wire`, the ``h2`` library with validation
off, so it sees every field as sent) opens the stream with an extended CONNECT,
and ``websockets``' sans-I/O ``ClientProtocol``, started in the OPEN state, frames
the messages (masking, fragments, ping/pong, the closing handshake,
``permessage-deflate`` as the server agreed it in the 200).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.headers import build_extension
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from onehop.probe.h2wire import H2Response, H2Wire

#: SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3, §9.1).
ENABLE_CONNECT_PROTOCOL = 0x8


class H2WebSocket:
    """Opens ``ws(s)://authority/path`` on a new stream of *wire*; ``status`` is the
    answer's (200: open), ``response`` the stream as the raw client saw it.

    ``recv`` returns the next message (``str`` or ``bytes``), or None once the
    server's close frame came or the stream ended (``close_code``/``close_reason``
    then say how). *early* is a message sent right after the request, before the
    answer. Pings from the
    server are answered unless ``answer_pings`` is False.
    """

    def __init__(self, wire: H2Wire, path: str, authority: str, *, scheme: str = "http",
                 subprotocols: Sequence[str] = (), deflate: bool = True,
                 fields: Sequence[tuple[bytes, bytes]] = (), protocol: bytes = b"websocket",
                 version: bytes = b"13", early: str | None = None,
                 timeout: float = 5.0) -> None:
        self.wire = wire
        self.timeout = timeout
        self.answer_pings = True
        self.pings = 0
        head = [(b":method", b"CONNECT"), (b":protocol", protocol),
                (b":scheme", scheme.encode()), (b":path", path.encode()),
                (b":authority", authority.encode()), (b"sec-websocket-version", version)]
        factories = [ClientPerMessageDeflateFactory()] if deflate else []
        if subprotocols:
            head.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
        if factories:
            offer = build_extension([(f.name, f.get_request_params()) for f in factories])
            head.append((b"sec-websocket-extensions", offer.encode()))
        head.extend(fields)
        ws_scheme = "wss" if scheme == "https" else "ws"
        self.proto = ClientProtocol(parse_uri(f"{ws_scheme}://{authority}{path}"),
                                    state=State.OPEN, extensions=factories or None,
                                    subprotocols=[Subprotocol(p) for p in subprotocols] or None,
                                    max_size=None)
        self.sid = wire.send_headers(head, end=False)
        self.response: H2Response = wire.responses[self.sid]
        if early is not None:  # (before the answer: no extension is agreed yet)
            self.send(early)
        self._until(lambda: bool(self.response.fields) or self._stream_over())
        self.status = self.response.status
        self._taken = 0
        self.subprotocol: str | None = None
        if self.status == 200:
            headers = Headers([(n.decode("latin-1"), v.decode("latin-1"))
                               for n, v in self.response.fields if n[:1] != b":"])
            self.proto.extensions = self.proto.process_extensions(headers)
            self.subprotocol = self.proto.subprotocol = self.proto.process_subprotocol(headers)
        self._parts: list[bytes] = []
        self._text = False

    # --- sending -----------------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self.proto.send_text(data.encode())
        else:
            self.proto.send_binary(data)
        self._push()

    def ping(self, payload: bytes = b"ping") -> None:
        self.proto.send_ping(payload)
        self._push()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and wait for the server's (its END_STREAM may follow:
        ``wire.wait(sid)`` waits for that)."""
        self.proto.send_close(code, reason)
        self._push()
        while self.recv() is not None:
            pass

    def _push(self) -> None:
        for chunk in self.proto.data_to_send():
            if self._stream_over():
                return
            if chunk:
                self.wire.send_data(self.sid, chunk, end=False)
            else:  # (the library's "close the TCP connection": END_STREAM, RFC 8441 §4)
                self.wire.conn.end_stream(self.sid)
                self.wire._flush()

    # --- receiving ---------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> str | bytes | None:
        """The next message; None once closed (or the stream ended or was reset).

        Raises:
            TimeoutError: nothing within *timeout* (default: the wire's).
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            message = self._take()
            if message is not None or self.proto.close_rcvd is not None:
                return message
            if self._stream_over():
                message = self._take()
                if message is None:
                    self.proto.receive_eof()
                return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no WebSocket message on stream {self.sid} in time")
            self.wire._read_once(min(left, 0.2))

    def _take(self) -> str | bytes | None:
        body = self.response.body
        if len(body) > self._taken:
            self.proto.receive_data(body[self._taken:])
            self._taken = len(body)
        for frame in self.proto.events_received():
            opcode = frame.opcode
            if opcode is Opcode.PING:
                self.pings += 1
                if not self.answer_pings:
                    self.proto.data_to_send()  # (the pong it queued is dropped)
                continue
            if opcode in (Opcode.TEXT, Opcode.BINARY):
                self._text = opcode is Opcode.TEXT
            elif opcode is not Opcode.CONT:
                continue  # PONG, CLOSE (the protocol answers a close itself)
            self._parts.append(bytes(frame.data))
            if frame.fin:
                data, self._parts = b"".join(self._parts), []
                self._push()
                return data.decode() if self._text else data
        self._push()
        return None

    def _stream_over(self) -> bool:
        response = self.response
        return response.ended or response.reset is not None or self.wire.closed

    def _until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream {self.sid}: no answer in time")
            self.wire._read_once(0.1)

    @property
    def close_code(self) -> int | None:
        """The code of the server's close frame (1006: the stream ended without one)."""
        rcvd = self.proto.close_rcvd
        if rcvd is not None:
            return rcvd.code
        return 1006 if self.proto.state is State.CLOSED else None

    @property
    def close_reason(self) -> str | None:
        rcvd = self.proto.close_rcvd
        return rcvd.reason if rcvd is not None else None


def announces_extended_connect(wire: H2Wire) -> bool:
    """Whether the server's SETTINGS carried SETTINGS_ENABLE_CONNECT_PROTOCOL = 1."""
    deadline = time.monotonic() + wire.timeout
    while not wire.remote_settings and time.monotonic() < deadline:
        wire._read_once(0.1)
    return wire.remote_settings.get(ENABLE_CONNECT_PROTOCOL) == 1
