"""Client checks: a scripted loopback server and a client command run against it.

``onehop probe client -- COMMAND {url}`` runs COMMAND once per check with ``{url}``
replaced by a base URL whose first path segment names the server's script for that
check (e.g. ``http://127.0.0.1:PORT/close-3``; the command may append paths, as in
``curl -s {url}/a {url}/b``). The server records every request head it receives, on
which connection and when, and the check judges the client from that record alone.

Scripts: ``reuse`` answers normally; ``close`` answers ``Connection: close`` but keeps
the socket open; ``http10`` answers HTTP/1.0 without keep-alive, socket kept open;
``katimeout`` announces ``Keep-Alive: timeout=1`` and keeps idle sockets open anyway;
``retry`` answers the first request on each connection and closes the connection,
unanswered, on any later request (as a server whose idle timeout raced the client).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from onehop.probe.checks import CLIENT_CHECKS, Outcome, Verdict, _register
from onehop.probe.wire import Head, parse_head

KA_TIMEOUT = 1.0
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@dataclass
class Arrival:
    """One request head as the scripted server received it."""

    conn_id: int
    index: int
    head: Head
    at: float
    idle: float | None
    answered: bool = True

    @property
    def method(self) -> str:
        """The request method."""
        return self.head.start.split(" ", 1)[0]

    @property
    def target(self) -> str:
        """The request target."""
        parts = self.head.start.split(" ")
        return parts[1] if len(parts) > 1 else ""

    @property
    def scenario(self) -> str:
        """The first path segment: which script answered."""
        return self.target.lstrip("/").split("/", 1)[0].split("?", 1)[0]


class ScriptedServer:
    """A threaded loopback server answering by script; owns its listener and threads.

    ``arrivals`` is appended to by connection threads under ``lock``.
    """

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self.stop = threading.Event()
        self.ids = itertools.count(1)
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> ScriptedServer:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(sock, next(self.ids)), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, sock: socket.socket, conn_id: int) -> None:
        sock.settimeout(0.1)
        buf = bytearray()
        last_response: float | None = None
        with sock:
            for index in itertools.count():
                head = self._read_head(sock, buf)
                if head is None:
                    return
                if not self._skip_body(sock, buf, head):
                    return
                now = time.monotonic()
                idle = None if last_response is None else now - last_response
                arrival = Arrival(conn_id, index, head, now, idle)
                with self.lock:
                    self.arrivals.append(arrival)
                reply = self._reply(arrival)
                if reply is None:
                    arrival.answered = False
                    return
                with contextlib.suppress(OSError):
                    sock.sendall(reply)
                last_response = time.monotonic()

    def _read_head(self, sock: socket.socket, buf: bytearray) -> Head | None:
        while b"\r\n\r\n" not in buf:
            if not self._fill(sock, buf):
                return None
        idx = buf.index(b"\r\n\r\n")
        head = parse_head(bytes(buf[:idx]))
        del buf[: idx + 4]
        return head

    def _fill(self, sock: socket.socket, buf: bytearray) -> bool:
        while not self.stop.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not chunk:
                return False
            buf += chunk
            return True
        return False

    def _skip_body(self, sock: socket.socket, buf: bytearray, head: Head) -> bool:
        if "chunked" in head.tokens("Transfer-Encoding"):
            while b"0\r\n\r\n" not in buf:
                if not self._fill(sock, buf):
                    return False
            del buf[: buf.index(b"0\r\n\r\n") + 5]
            return True
        try:
            length = int(head.get("Content-Length") or "0")
        except ValueError:
            return False
        while len(buf) < length:
            if not self._fill(sock, buf):
                return False
        del buf[:length]
        return True

    @staticmethod
    def _reply(a: Arrival) -> bytes | None:
        body = f"onehop probe client script {a.scenario}: {a.target}\n".encode()
        version, fields = "HTTP/1.1", [("Content-Type", "text/plain")]
        if a.scenario.startswith("close"):
            fields.append(("Connection", "close"))
        elif a.scenario.startswith("http10"):
            version = "HTTP/1.0"
        elif a.scenario.startswith("katimeout"):
            fields += [("Connection", "keep-alive"), ("Keep-Alive", f"timeout={KA_TIMEOUT:g}")]
        elif a.scenario.startswith("retry") and a.index > 0:
            return None
        fields.append(("Content-Length", str(len(body))))
        lines = [f"{version} 200 OK"] + [f"{n}: {v}" for n, v in fields]
        head = "\r\n".join(lines).encode() + b"\r\n\r\n"
        return head + (b"" if a.method == "HEAD" else body)


_runs = itertools.count(1)


@dataclass
class ClientTarget:
    """A client command run against a ``ScriptedServer``; ``{url}`` marks the base URL."""

    command: Sequence[str]
    server: ScriptedServer
    timeout: float = 20.0
    notes: dict[str, str] = field(default_factory=dict)

    def run(self, scenario: str) -> tuple[list[Arrival], str]:
        """Run the command for *scenario*; return its arrivals and a note on how it ended."""
        name = f"{scenario}-{next(_runs)}"
        url = f"http://127.0.0.1:{self.server.port}/{name}"
        argv = [arg.replace("{url}", url) for arg in self.command]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            status = f"exit {proc.wait(self.timeout)}"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            status = f"killed after {self.timeout:g}s"
        time.sleep(0.1)  # let connection threads record the last heads
        with self.server.lock:
            got = [a for a in self.server.arrivals if a.scenario == name]
        return got, status


def _describe(arrivals: list[Arrival]) -> str:
    return ", ".join(
        f"{a.method} {a.target.split('/', 2)[-1] or '/'}@c{a.conn_id}" for a in arrivals
    )


@_register(
    CLIENT_CHECKS,
    "client-reuse",
    "RFC 9112 §9.3",
    "A client MAY send additional requests on a persistent connection until it sends or "
    'receives a "close" connection option or receives an HTTP/1.0 response without a '
    '"keep-alive" connection option.',
)
def client_reuse(t: ClientTarget) -> Outcome:
    got, status = t.run("reuse")
    if len(got) < 2:
        return Verdict.INFO, f"command made {len(got)} request(s) ({status}): nothing to reuse"
    conns = {a.conn_id for a in got}
    if len(conns) < len(got):
        return Verdict.PASS, f"{len(got)} requests on {len(conns)} connection(s): {_describe(got)}"
    if all("close" in a.head.tokens("Connection") for a in got):
        return Verdict.INFO, f"client sends close on every request: {_describe(got)}"
    return Verdict.FAIL, f"{len(got)} requests on {len(conns)} connections, no close sent"


def _stop_after(t: ClientTarget, scenario: str, what: str) -> Outcome:
    got, status = t.run(scenario)
    late = [a for a in got if a.index > 0]
    if late:
        return Verdict.FAIL, f"sent {_describe(late)} after {what} on the same connection"
    if len(got) < 2:
        return Verdict.INFO, f"command made {len(got)} request(s) ({status}): not exercised"
    return Verdict.PASS, f"after {what}, next request on a new connection: {_describe(got)}"


@_register(
    CLIENT_CHECKS,
    "client-stop-after-close",
    "RFC 9112 §9.6",
    'A client that receives a "close" connection option MUST cease sending requests on that '
    "connection and close the connection after reading the response message containing the "
    '"close" connection option; [...]',
)
def client_stop_after_close(t: ClientTarget) -> Outcome:
    return _stop_after(t, "close", "Connection: close")


@_register(
    CLIENT_CHECKS,
    "client-stop-after-http10",
    "RFC 9112 §9.3",
    "A client MAY send additional requests on a persistent connection until it sends or "
    'receives a "close" connection option or receives an HTTP/1.0 response without a '
    '"keep-alive" connection option.',
)
def client_stop_after_http10(t: ClientTarget) -> Outcome:
    return _stop_after(t, "http10", "an HTTP/1.0 response without keep-alive")


@_register(
    CLIENT_CHECKS,
    "client-keepalive-timeout",
    "RFC 9112 §C.2.2 (RFC 7230 §A.1.2)",
    'However, some implementations implement the explicitly negotiated ("Keep-Alive") '
    "version of persistent connections described in Section 19.7.1 of [RFC2068].",
)
def client_keepalive_timeout(t: ClientTarget) -> Outcome:
    got, status = t.run("katimeout")
    stale = [a for a in got if a.idle is not None and a.idle >= KA_TIMEOUT]
    if stale:
        a = stale[0]
        return Verdict.FAIL, (
            f"reused c{a.conn_id} after {a.idle:.2f}s idle; Keep-Alive: timeout={KA_TIMEOUT:g}"
        )
    paused = [
        b
        for a, b in itertools.pairwise(got)
        if b.conn_id != a.conn_id and b.at - a.at >= KA_TIMEOUT
    ]
    if paused:
        return Verdict.PASS, f"new connection after a pause past timeout: {_describe(got)}"
    return Verdict.INFO, f"no pause past timeout={KA_TIMEOUT:g} ({status}): {_describe(got)}"


@_register(
    CLIENT_CHECKS,
    "client-retry-idempotent-only",
    "RFC 9112 §9.3.2",
    "Idempotent methods (Section 9.2.2 of [HTTP]) are significant to pipelining because they "
    "can be automatically retried after a connection failure.",
)
def client_retry_idempotent_only(t: ClientTarget) -> Outcome:
    got, status = t.run("retry")
    killed = [a for a in got if not a.answered]
    if not killed:
        return Verdict.INFO, f"no request on a reused connection ({status}): nothing to retry"
    notes: list[str] = []
    verdict = Verdict.PASS
    for k in killed:
        retried = any(a.at > k.at and (a.method, a.target) == (k.method, k.target) for a in got)
        what = f"{k.method} {k.target.split('/', 2)[-1] or '/'}"
        if k.method not in IDEMPOTENT and retried:
            verdict = Verdict.FAIL
            notes.append(f"non-idempotent {what} retried")
        elif retried:
            notes.append(f"{what} retried on a fresh connection")
        elif k.method in IDEMPOTENT:
            verdict = Verdict.INFO if verdict is Verdict.PASS else verdict
            notes.append(f"{what} not retried")
        else:
            notes.append(f"non-idempotent {what} not retried")
    return verdict, "; ".join(notes)
