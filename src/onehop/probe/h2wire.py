"""A raw HTTP/2 client for the probe: the ``h2`` library as the framer, sockets, no onehop code.

It sees every field a peer sends, as sent: inbound validation is off, so a
response carrying ``Connection`` or ``Transfer-Encoding`` is recorded (and judged
by the probe) instead of being refused by the library; outbound validation is
off too, so the probe can send a malformed request on purpose (RFC 9113 §8.2.2).
Cleartext connections use prior knowledge (RFC 9113 §3.3), TLS ones ALPN ``h2``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from onehop.probe.wire import WireError

try:
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.events import (
        DataReceived,
        InformationalResponseReceived,
        ResponseReceived,
        StreamEnded,
        StreamReset,
        TrailersReceived,
    )
    from h2.exceptions import ProtocolError
except ImportError as exc:  # pragma: no cover - h2 is a dependency; a stripped install
    raise ImportError("the HTTP/2 probe needs the h2 package: pip install 'onehop[h2]'"
                      ) from exc


class NotHttp2(WireError):
    """The peer does not speak HTTP/2 here (ALPN chose something else, or no SETTINGS)."""


@dataclass
class H2Response:
    """What came back on one stream, as sent (names and values as bytes)."""

    stream_id: int
    fields: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: The RST_STREAM error code, if the peer reset the stream (0: NO_ERROR).
    reset: int | None = None
    ended: bool = False

    @property
    def status(self) -> int | None:
        for name, value in self.fields:
            if name == b":status":
                return int(value)
        return None

    def names(self) -> list[str]:
        """The field names of the head and the trailers, lower-cased as sent."""
        return [n.decode("latin-1") for n, _ in self.fields + self.trailers]

    def get(self, name: str) -> str | None:
        values = [v.decode("latin-1") for n, v in self.fields if n.decode("latin-1") == name]
        return ", ".join(values) if values else None


class H2Wire:
    """One HTTP/2 connection to *host*:*port* (``tls``: ALPN ``h2``, no verification)."""

    def __init__(self, host: str, port: int, *, tls: bool = False, timeout: float = 5.0,
                 server_name: str | None = None) -> None:
        self.timeout = timeout
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            try:
                sock = ctx.wrap_socket(sock, server_hostname=server_name or host)
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise WireError("tls", str(exc)) from None
            chosen = sock.selected_alpn_protocol()
            if chosen != "h2":
                sock.close()
                raise NotHttp2("alpn", f"the server chose {chosen or 'no protocol'} by ALPN, "
                                       "not h2")
        self.sock = sock
        self.conn = H2Connection(H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False,
            normalize_inbound_headers=False))
        self.conn.initiate_connection()
        self.responses: dict[int, H2Response] = {}
        #: The GOAWAY the server sent: (last stream id, error code), or None.
        self.goaway: tuple[int, int] | None = None
        self.closed = False
        self.remote_settings: dict[int, int] = {}
        self._pending = b""
        self._flush()

    def __enter__(self) -> H2Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_headers(self, fields: list[tuple[bytes, bytes]], *, end: bool = True,
                     flush: bool = True) -> int:
        """Open a stream with exactly *fields* (pseudo-header fields included); without
        *flush* the frame waits to leave with the next one."""
        sid = self.conn.get_next_available_stream_id()
        self.responses[sid] = H2Response(sid)
        self.conn.send_headers(sid, fields, end_stream=end)
        if flush:
            self._flush()
        return sid

    def send_data(self, sid: int, data: bytes, *, end: bool = True) -> None:
        """Send *data* on *sid* as the windows allow (reading while they are shut)."""
        view = memoryview(data)
        while view:
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                self._read_once(self.timeout)
                continue
            chunk, view = view[:window], view[window:]
            self.conn.send_data(sid, bytes(chunk), end_stream=end and not view)
            self._flush()
        if end and not data:
            self.conn.end_stream(sid)
            self._flush()

    def request(self, method: str, path: str, authority: str, *,
                fields: list[tuple[str, str]] | None = None, body: bytes = b"",
                scheme: str = "http") -> int:
        """Open a stream for a request; its body, if any, follows at once."""
        head = [(b":method", method.encode()), (b":scheme", scheme.encode()),
                (b":authority", authority.encode()), (b":path", path.encode())]
        # (Names as given: the probe sends an upper-case one on purpose.)
        head += [(n.encode("latin-1"), v.encode("latin-1")) for n, v in fields or []]
        sid = self.send_headers(head, end=not body)
        if body:
            self.send_data(sid, body)
        return sid

    def _read_once(self, timeout: float) -> bool:
        """Read and process what arrives within *timeout*; False once the peer closed."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(self._take_goaway(data))
        except ProtocolError as exc:
            self.closed = True
            raise WireError("http2", f"the server broke HTTP/2 framing: {exc}") from None
        for event in events:
            self._event(event)
        with contextlib.suppress(OSError, ProtocolError):
            self._flush()
        return True

    def _take_goaway(self, data: bytes) -> bytes:
        """*data* without GOAWAY frames, which are recorded here instead.

        h2 accepts no frame at all once it has seen a GOAWAY, but a server's graceful
        GOAWAY lets the streams it names finish (RFC 9113 §6.8): the probe must see
        their answers. Frames are split on their 9-byte headers (RFC 9113 §4.1).
        """
        buf = self._pending + data
        out = bytearray()
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            frame, buf = buf[:9 + length], buf[9 + length:]
            if frame[3] == 0x7 and length >= 8:  # GOAWAY
                last = int.from_bytes(frame[9:13], "big") & 0x7FFFFFFF
                self.goaway = (last, int.from_bytes(frame[13:17], "big"))
            else:
                out += frame
        self._pending = buf
        return bytes(out)

    def _event(self, event: Any) -> None:
        sid = getattr(event, "stream_id", None)
        response = self.responses.get(sid) if sid else None
        if isinstance(event, ResponseReceived) and response is not None:
            response.fields = list(event.headers)
        elif isinstance(event, InformationalResponseReceived) and response is not None:
            response.informational.append(list(event.headers))
        elif isinstance(event, DataReceived) and response is not None:
            response.body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, TrailersReceived) and response is not None:
            response.trailers = list(event.headers)
        elif isinstance(event, StreamEnded) and response is not None:
            response.ended = True
        elif isinstance(event, StreamReset) and response is not None:
            response.reset = int(event.error_code or 0)
        if hasattr(event, "changed_settings"):
            for code, change in event.changed_settings.items():
                self.remote_settings[int(code)] = change.new_value

    def wait(self, sid: int, timeout: float | None = None) -> H2Response:
        """Read until stream *sid* ended or was reset, or the connection closed.

        Raises:
            WireError: ``timeout`` when nothing ends it in time; ``http2`` when the
                server broke the framing.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        response = self.responses[sid]
        while not (response.ended or response.reset is not None or self.closed):
            left = deadline - time.monotonic()
            if left <= 0:
                raise WireError("timeout", f"stream {sid} did not end in time")
            self._read_once(min(left, 0.5))
        return response

    def settle(self, seconds: float) -> None:
        """Read whatever arrives for *seconds* (to see a GOAWAY or a close)."""
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            self._read_once(max(0.01, deadline - time.monotonic()))

    def get(self, path: str, authority: str, *, method: str = "GET",
            fields: list[tuple[str, str]] | None = None, body: bytes = b"",
            scheme: str = "http") -> H2Response:
        """One request and its whole response."""
        return self.wait(self.request(method, path, authority, fields=fields, body=body,
                                      scheme=scheme))
