"""Real peers for the client tests: a scripted raw-socket server, and runners for
Python's http.server (HTTP/1.0), uvicorn and nginx on free loopback ports.

The scripted server reads raw request heads (and Content-Length bodies) itself,
so no onehop code judges what the client sent, and counts TCP connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.helpers import free_port


@dataclass
class Seen:
    """One request as the server read it."""

    conn: int  # 1-based TCP connection number
    index: int  # 0-based request number on that connection
    method: str
    path: str
    head: bytes
    body: bytes
    answered: bool = False


#: What a script returns: bytes to send, then "keep", "close" (FIN) or "reset" (RST).
Action = tuple[bytes, str]
Script = Callable[[Seen], Action]


def ok(body: bytes = b"ok", extra: str = "") -> bytes:
    """A 200 response with Content-Length and *extra* header lines."""
    return (
        f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body
    )


@dataclass
class ScriptedServer:
    """An asyncio server whose answers come from *script*; counts connections."""

    script: Script
    idle_close_after: float | None = None  # close a connection idle this long
    delay: float = 0.0  # wait this long before each answer
    open_now: int = 0
    max_open: int = 0
    connections: int = 0
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._track, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._server.wait_closed()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answered(self) -> list[str]:
        return [s.path for s in self.seen if s.answered]

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            await self._handle(reader, writer)
        except asyncio.CancelledError:
            writer.close()
        finally:
            self.open_now -= 1
            self._tasks.discard(task)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        index = 0
        try:
            while True:
                try:
                    if self.idle_close_after is not None:
                        async with asyncio.timeout(self.idle_close_after):
                            head = await reader.readuntil(b"\r\n\r\n")
                    else:
                        head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                length = 0
                chunked = False
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    if name.strip().lower() == b"transfer-encoding":
                        chunked = True
                body = await reader.readexactly(length) if length else b""
                if chunked:
                    body = await _read_chunked(reader)
                seen = Seen(conn, index, method, path, head, body)
                self.seen.append(seen)
                index += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                data, after = self.script(seen)
                if data:
                    writer.write(data)
                    await writer.drain()
                if after == "reset":
                    _reset(writer)
                    return
                seen.answered = bool(data)
                if after == "close":
                    return
        finally:
            writer.close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return out
        out += await reader.readexactly(size)
        await reader.readexactly(2)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashing server would."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()



@contextlib.contextmanager
def scripted_in_thread(script: Script, **options: float | None) -> Iterator[ScriptedServer]:
    """A :class:`ScriptedServer` on its own event loop in a thread, for blocking clients
    (the CLI, curl, ``httpx.Client``). Read its ``seen`` once the client is done."""
    started = threading.Event()
    stop = threading.Event()
    holder: list[ScriptedServer] = []

    async def run() -> None:
        async with ScriptedServer(script, **options) as server:  # type: ignore[arg-type]
            holder.append(server)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    try:
        assert started.wait(10), "the scripted server did not start"
        yield holder[0]
    finally:
        stop.set()
        thread.join(5)


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- Python's http.server in HTTP/1.0 mode --------------------------------------------------


class _Http10Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    connections: list[int] = []

    def setup(self) -> None:
        super().setup()
        type(self).connections.append(1)

    def do_GET(self) -> None:
        body = f"path={self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if self.path.startswith("/length"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def http10_server() -> Iterator[tuple[int, list[int]]]:
    """http.server answering HTTP/1.0, close-delimited unless the path starts /length."""
    handler = type("H", (_Http10Handler,), {"connections": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler.connections
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- uvicorn ------------------------------------------------------------------------------------

UVICORN_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    out = (scope["method"] + " " + scope["path"]).encode() + b" " + body
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": out})
'''


@contextlib.contextmanager
def uvicorn_server(keep_alive: int = 5) -> Iterator[int]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "echoapp.py").write_text(UVICORN_APP)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "echoapp:app", "--port", str(port),
             "--host", "127.0.0.1", "--timeout-keep-alive", str(keep_alive),
             "--log-level", "warning", "--http", "h11"],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port, proc)
            yield port
        finally:
            stop(proc)


# --- nginx --------------------------------------------------------------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@contextlib.contextmanager
def nginx_server(
    keepalive_timeout: str = "1s", keepalive_requests: int = 3, cpu: int | None = None
) -> Iterator[tuple[int, Callable[[], list[str]]]]:
    """nginx on a free port, daemon off, pid/logs/temp in a temp dir; stopped on exit.

    *cpu* pins it to that CPU with ``taskset`` (the benchmark's setup).
    """
    assert NGINX is not None
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        Path(tmp, "html").mkdir()
        Path(tmp, "html", "index.html").write_text("hello from nginx\n")
        Path(tmp, "html", "big").write_bytes(b"x" * 300_000)
        conf = Path(tmp, "nginx.conf")
        conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format conns '$connection $connection_requests $request_method $uri';
    access_log {tmp}/access.log conns;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout {keepalive_timeout};
    keepalive_requests {keepalive_requests};
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/html;
        location /echo {{ return 200 "echo $request_method\\n"; }}
    }}
}}
""")
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        proc = subprocess.Popen(
            [*pin, NGINX, "-c", str(conf), "-p", tmp, "-e", f"{tmp}/error.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port, proc)

            def log() -> list[str]:
                # nginx logs a request after it sent the response, so the client can
                # be done before the last line is written: read until it settles.
                path = Path(tmp, "access.log")
                lines: list[str] | None = None
                deadline = time.monotonic() + 2.0
                while True:
                    now = path.read_text().splitlines() if path.exists() else []
                    if now == lines or time.monotonic() > deadline:
                        return now
                    lines = now
                    time.sleep(0.1)

            yield port, log
        finally:
            stop(proc)
