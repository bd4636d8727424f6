"""Raw-socket HTTP/1.x reading and writing for the probe, independent of ``onehop.core``.

The framing here is deliberately minimal (RFC 9112 §6.3): enough to find where a
response ends (HEAD/1xx/204/304, chunked, Content-Length, close-delimited) and to tell
a peer's orderly close from a reset or a connection left open.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from dataclasses import dataclass, field
from enum import Enum

MAX_HEAD = 64 * 1024


class WireError(Exception):
    """The peer did not produce what was expected; ``kind`` says how it failed."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class PeerState(Enum):
    """What the peer did with the connection after a response, seen from our side."""

    CLOSED = "closed"
    RESET = "reset"
    OPEN = "open"
    DATA = "unexpected data"


@dataclass
class Head:
    """A parsed start line plus field lines, with the raw bytes kept for evidence."""

    start: str
    fields: list[tuple[str, str]]
    raw: bytes

    def get(self, name: str) -> str | None:
        """Return every field line named *name*, joined with ``, `` (RFC 9110 §5.3)."""
        values = [v for n, v in self.fields if n.lower() == name.lower()]
        return ", ".join(values) if values else None

    def has(self, name: str) -> bool:
        """Return whether any field line is named *name*, case-insensitively."""
        return any(n.lower() == name.lower() for n, _ in self.fields)

    def tokens(self, name: str) -> list[str]:
        """Return the lower-cased comma-separated list elements of field *name*."""
        value = self.get(name) or ""
        return [t.strip().lower() for t in value.split(",") if t.strip()]


@dataclass
class Response:
    """One final (or 101) response with its body and any interim 1xx heads before it."""

    head: Head
    version: str
    status: int
    body: bytes = b""
    framing: str = "none"
    interim: list[Head] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        """Shorthand for ``head.get``."""
        return self.head.get(name)

    def tokens(self, name: str) -> list[str]:
        """Shorthand for ``head.tokens``."""
        return self.head.tokens(name)

    def summary(self) -> str:
        """One-line evidence: status and Connection/Keep-Alive fields as received."""
        conn = self.get("Connection")
        text = f"{self.version} {self.status}"
        if conn is not None:
            text += f" Connection: {conn}"
        ka = self.get("Keep-Alive")
        if ka is not None:
            text += f" Keep-Alive: {ka}"
        return text


def parse_head(raw: bytes) -> Head:
    """Split a head (without the final empty line) into start line and fields.

    Accepts bare LF as a line terminator (RFC 9112 §2.2 allows recipients to), keeps
    obs-fold continuation lines joined to the previous value, and never raises on odd
    field lines: the probe reports, it does not police its own peers' syntax here.
    """
    text = raw.decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, _, value = line.partition(":")
        fields.append((name.strip(), value.strip(" \t")))
    return Head(lines[0], fields, raw)


class Wire:
    """One client TCP connection with a read buffer; owned by a single check.

    Every read honours ``timeout`` seconds; ``WireError`` kinds are ``timeout``,
    ``closed`` (orderly EOF) and ``reset``.
    """

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close our side; errors are ignored."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> str | None:
        """Send *data*; return None on success or a short error description."""
        try:
            self.sock.sendall(data)
        except OSError as exc:
            return type(exc).__name__
        return None

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WireError("timeout", "no data before deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError as exc:
            raise WireError("timeout", "no data before deadline") from exc
        except ConnectionResetError as exc:
            raise WireError("reset", "connection reset by peer") from exc
        except OSError as exc:
            raise WireError("reset", type(exc).__name__) from exc
        if not chunk:
            self.eof = True
            raise WireError("closed", "peer closed the connection")
        self.buf += chunk

    def read_head(self, timeout: float | None = None) -> Head:
        """Read up to and including the empty line ending a head (CRLF or bare LF)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for sep in (b"\r\n\r\n", b"\n\n"):
                idx = self.buf.find(sep)
                if idx >= 0:
                    raw = bytes(self.buf[:idx])
                    del self.buf[: idx + len(sep)]
                    return parse_head(raw)
            if len(self.buf) > MAX_HEAD:
                raise WireError("too-large", "head exceeds 64 KiB")
            if self.eof:
                raise WireError("closed", "peer closed the connection")
            self._fill(deadline)

    def read_exact(self, n: int, deadline: float) -> bytes:
        """Read exactly *n* bytes of body."""
        while len(self.buf) < n:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_line(self, deadline: float) -> bytes:
        """Read one line of chunked framing, without its terminator."""
        while True:
            idx = self.buf.find(b"\n")
            if idx >= 0:
                line = bytes(self.buf[:idx]).rstrip(b"\r")
                del self.buf[: idx + 1]
                return line
            self._fill(deadline)

    def read_chunked(self, deadline: float) -> bytes:
        """Read a chunked body and its trailer section (RFC 9112 §7.1)."""
        body = bytearray()
        while True:
            size_line = self.read_line(deadline)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise WireError("framing", f"bad chunk size {size_line[:20]!r}") from exc
            if size == 0:
                while self.read_line(deadline):
                    pass
                return bytes(body)
            body += self.read_exact(size, deadline)
            self.read_line(deadline)

    def read_until_close(self, deadline: float) -> tuple[bytes, bool]:
        """Read a close-delimited body; return it and whether EOF was really seen."""
        while not self.eof:
            try:
                self._fill(deadline)
            except WireError as exc:
                if exc.kind == "closed":
                    break
                data = bytes(self.buf)
                self.buf.clear()
                return data, False
        data = bytes(self.buf)
        self.buf.clear()
        return data, True

    def read_response(self, method: str = "GET", timeout: float | None = None) -> Response:
        """Read one final response (skipping and keeping 1xx heads) and its body.

        Body length follows RFC 9112 §6.3: HEAD, 1xx, 204 and 304 have none; chunked
        as the final coding wins over Content-Length; then Content-Length; otherwise
        the body runs until the server closes.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        interim: list[Head] = []
        while True:
            head = self.read_head(max(0.01, deadline - time.monotonic()))
            parts = head.start.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise WireError("framing", f"bad status line {head.start[:60]!r}")
            version, status = parts[0], int(parts[1])
            if 100 <= status < 200 and status != 101:
                interim.append(head)
                continue
            resp = Response(head, version, status, interim=interim)
            if method == "HEAD" or status in (101, 204, 304):
                return resp
            te = head.tokens("Transfer-Encoding")
            if te and te[-1] == "chunked":
                resp.body, resp.framing = self.read_chunked(deadline), "chunked"
            elif te:
                resp.body, _ = self.read_until_close(deadline)
                resp.framing = "close"
            elif (cl := head.get("Content-Length")) is not None:
                try:
                    length = int(cl.split(",")[0].strip())
                except ValueError as exc:
                    raise WireError("framing", f"bad Content-Length {cl!r}") from exc
                resp.body, resp.framing = self.read_exact(length, deadline), "length"
            else:
                resp.body, seen = self.read_until_close(deadline)
                resp.framing = "close" if seen else "close(timeout)"
            return resp

    def peer_state(self, wait: float = 1.0) -> PeerState:
        """Wait up to *wait* seconds and report whether the peer closed, reset or stayed."""
        if self.buf:
            return PeerState.DATA
        if self.eof:
            return PeerState.CLOSED
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return PeerState.OPEN
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                return PeerState.OPEN
            try:
                self.sock.settimeout(remaining)
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return PeerState.OPEN
            except OSError:
                return PeerState.RESET
            if not chunk:
                self.eof = True
                return PeerState.CLOSED
            self.buf += chunk
            return PeerState.DATA

    def idle_close_after(self, limit: float) -> float | None:
        """Return seconds until the peer closes an idle connection, or None if > *limit*."""
        start = time.monotonic()
        state = self.peer_state(limit)
        if state in (PeerState.CLOSED, PeerState.RESET):
            return time.monotonic() - start
        return None


def request(
    method: str,
    target: str,
    host: str,
    fields: list[tuple[str, str]] | None = None,
    version: str = "HTTP/1.1",
    body: bytes = b"",
    eol: bytes = b"\r\n",
) -> bytes:
    """Build a request head (and body) byte for byte, exactly as the check wants it."""
    lines = [f"{method} {target} {version}".encode("latin-1")]
    if host:
        lines.append(f"Host: {host}".encode("latin-1"))
    for name, value in fields or []:
        lines.append(f"{name}: {value}".encode("latin-1"))
    return eol.join(lines) + eol + eol + body
