"""Run a real onehop server on a free loopback port in a thread, and talk to it raw."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from onehop.server import Config, Server


@contextlib.contextmanager
def running(app: Any, **kwargs: Any) -> Iterator[Server]:
    """Serve *app* on 127.0.0.1:0 in a background thread; stop it and join on exit."""
    kwargs.setdefault("port", 0)
    kwargs.setdefault("install_signal_handlers", False)
    kwargs.setdefault("lifespan", "off")
    kwargs.setdefault("timeout_graceful_shutdown", 2.0)
    server = Server(Config(app=app, **kwargs))
    errors: list[BaseException] = []

    def target() -> None:
        try:
            server.run()
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        if not server.wait_started(5):
            raise RuntimeError(f"server did not start: {errors}")
        yield server
    finally:
        server.stop()
        thread.join(10)
        assert not thread.is_alive(), "server thread did not stop"


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return sock


def read_until_close(sock: socket.socket, timeout: float = 5) -> bytes:
    """Read everything until the server closes (raises on timeout)."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def read_responses(sock: socket.socket, count: int, timeout: float = 5) -> bytes:
    """Read until *count* complete Content-Length-framed responses arrived."""
    sock.settimeout(timeout)
    buf = b""
    while True:
        parsed, rest = 0, buf
        while True:
            head, sep, body = rest.partition(b"\r\n\r\n")
            if not sep:
                break
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(body) < length:
                break
            parsed += 1
            rest = body[length:]
        if parsed >= count:
            return buf
        data = sock.recv(65536)
        if not data:
            return buf
        buf += data


def is_closed(sock: socket.socket, timeout: float = 2) -> bool:
    """True when the server closed its side (EOF or reset) within *timeout*."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def hello(scope: Any, receive: Any, send: Any) -> None:
    """Plain ASGI app: echoes method and path, with Content-Length."""
    if scope["type"] != "http":
        return
    body = f"{scope['method']} {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def streaming(scope: Any, receive: Any, send: Any) -> None:
    """Streams two chunks without Content-Length."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"part1-", "more_body": True})
    await send({"type": "http.response.body", "body": b"part2"})
