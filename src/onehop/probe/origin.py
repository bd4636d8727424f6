"""The recording origin behind a proxy under test.

A threaded loopback socket server, independent of ``onehop.core``, that records the
exact request head it receives and on which connection, and answers as the request's
query string tells it to, so a check can ask the proxy for a response with any
connection-specific fields, HTTP version or body framing.

Query parameters (all optional): ``v=1.0`` answer HTTP/1.0; ``conn=VALUE`` send
``Connection: VALUE``; ``ka=VALUE`` send ``Keep-Alive``; ``hdr=Name:Value`` (repeatable)
extra field lines; ``body=length|chunked|close`` body framing; ``linger=S`` after a
response that ends the connection keep the socket open S seconds and record any
request that still arrives; ``upgrade=1`` answer an Upgrade request with 101 and echo.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from onehop.probe.wire import Head, parse_head

PREFIX = "/__onehop_probe/"


@dataclass
class Seen:
    """One request as the origin received it."""

    token: str
    conn_id: int
    index: int
    head: Head
    after_close: bool = False

    @property
    def version(self) -> str:
        """The request's HTTP version."""
        return self.head.start.rsplit(" ", 1)[-1]


def body_for(token: str) -> bytes:
    """The body the origin sends for *token*: long enough to need several chunks."""
    return (f"onehop-probe {token} ".encode() * 200)[:3000]


class _Conn:
    """One accepted connection: a buffer and a reader of request heads and bodies."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_head(self) -> Head | None:
        while True:
            idx = self.buf.find(b"\r\n\r\n")
            if idx >= 0:
                raw = bytes(self.buf[:idx])
                del self.buf[: idx + 4]
                return parse_head(raw)
            if not self._fill():
                return None

    def skip_body(self, head: Head) -> bool:
        te = head.tokens("Transfer-Encoding")
        if te and te[-1] == "chunked":
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill():
                        return False
                idx = self.buf.find(b"\r\n")
                size = int(bytes(self.buf[:idx]).split(b";")[0] or b"0", 16)
                del self.buf[: idx + 2]
                if size == 0:
                    while True:
                        while b"\r\n" not in self.buf:
                            if not self._fill():
                                return False
                        idx = self.buf.find(b"\r\n")
                        del self.buf[: idx + 2]
                        if idx == 0:
                            return True
                while len(self.buf) < size + 2:
                    if not self._fill():
                        return False
                del self.buf[: size + 2]
        length = int((head.get("Content-Length") or "0").split(",")[0].strip() or 0)
        while len(self.buf) < length:
            if not self._fill():
                return False
        del self.buf[:length]
        return True


def _request_ends(head: Head) -> bool:
    """Whether the request itself ends the connection (RFC 9112 §9.3): a correct origin."""
    options = head.tokens("Connection")
    if head.start.endswith("HTTP/1.0"):
        return "keep-alive" not in options
    return "close" in options


class RecordingOrigin:
    """A loopback origin server that records request heads per connection.

    ``seen`` is guarded by ``lock``; connection threads append, checks read via ``wait_for``.
    Use as a context manager: entering starts the accept thread, leaving stops it and
    closes every connection it accepted.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.connections = 0
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RecordingOrigin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind and start accepting."""
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind((self.host, self.port))
        self.port = lst.getsockname()[1]
        lst.listen(64)
        lst.settimeout(0.2)
        self._listener = lst
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and close every socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                conn_id = self.connections
                self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock, conn_id), daemon=True).start()

    def requests(self, token: str) -> list[Seen]:
        """Every request recorded for *token* so far."""
        with self.lock:
            return [s for s in self.seen if s.token == token]

    def wait_for(self, token: str, count: int = 1, timeout: float = 2.0) -> list[Seen]:
        """Wait until *count* requests for *token* arrived (or *timeout*); return them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests(token)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def on_conn(self, conn_id: int) -> list[Seen]:
        """Every request recorded on connection *conn_id*."""
        with self.lock:
            return [s for s in self.seen if s.conn_id == conn_id]

    def _serve(self, sock: socket.socket, conn_id: int) -> None:
        conn = _Conn(sock)
        sock.settimeout(10)
        index = 0
        after_close = False
        try:
            while not self._stop.is_set():
                head = conn.read_head()
                if head is None:
                    return
                target = head.start.split(" ")[1] if head.start.count(" ") >= 2 else "/"
                parts = urlsplit(target)
                token = parts.path[len(PREFIX) :] if parts.path.startswith(PREFIX) else ""
                query = parse_qs(parts.query)
                with self.lock:
                    self.seen.append(Seen(token, conn_id, index, head, after_close))
                index += 1
                if not conn.skip_body(head):
                    return
                if query.get("upgrade") and head.has("Upgrade"):
                    self._switch(conn, head)
                    return
                ends = self._respond(conn, token, query) or _request_ends(head)
                if ends:
                    linger = float(query.get("linger", ["0"])[0])
                    if linger <= 0:
                        return
                    sock.settimeout(linger)
                    after_close = True
        except (OSError, ValueError):
            return
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _respond(self, conn: _Conn, token: str, query: dict[str, list[str]]) -> bool:
        """Send the response the query asks for; return whether the connection ends."""
        version = "HTTP/1.0" if query.get("v", [""])[0] == "1.0" else "HTTP/1.1"
        framing = query.get("body", ["length"])[0]
        body = body_for(token)
        lines = [f"{version} 200 OK", "Content-Type: text/plain", f"X-Probe-Token: {token}"]
        conn_value = query.get("conn", [""])[0]
        if conn_value:
            lines.append(f"Connection: {conn_value}")
        if ka := query.get("ka", [""])[0]:
            lines.append(f"Keep-Alive: {ka}")
        lines += query.get("hdr", [])
        if framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
            payload = (
                b"".join(
                    b"%x\r\n%s\r\n" % (len(body[i : i + 1000]), body[i : i + 1000])
                    for i in range(0, len(body), 1000)
                )
                + b"0\r\n\r\n"
            )
        elif framing == "close":
            payload = body
        else:
            lines.append(f"Content-Length: {len(body)}")
            payload = body
        conn.sock.sendall("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + payload)
        options = [t.strip().lower() for t in conn_value.split(",")]
        if framing == "close":
            return True
        if version == "HTTP/1.0":
            return "keep-alive" not in options
        return "close" in options

    def _switch(self, conn: _Conn, head: Head) -> None:
        proto = head.get("Upgrade") or ""
        switch = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
        conn.sock.sendall(f"{switch}Upgrade: {proto}\r\n\r\n".encode("latin-1"))
        data = bytes(conn.buf)
        conn.buf.clear()
        while True:
            if data:
                conn.sock.sendall(b"echo:" + data)
            try:
                data = conn.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
