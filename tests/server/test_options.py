"""Server options: concurrency and request limits, proxy headers, Unix sockets, inherited
fds, and the body-read timeout."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from typing import Any

import pytest

from onehop.server import Config, Server
from tests.server.helpers import (
    connect,
    hello,
    is_closed,
    read_responses,
    read_until_close,
    running,
)

pytestmark = pytest.mark.timeout(20)

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def whoami(scope: Any, receive: Any, send: Any) -> None:
    """Answers the scope's client, scheme and server as JSON."""
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"],
                       "server": scope["server"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def _json_body(response: bytes) -> Any:
    return json.loads(response.partition(b"\r\n\r\n")[2])


def test_limit_concurrency_answers_503_with_close_beyond_the_limit() -> None:
    with running(hello, limit_concurrency=1) as server, connect(server) as first:
        first.sendall(GET)
        assert read_responses(first, 1).startswith(b"HTTP/1.1 200 ")
        with connect(server) as second:  # the second open connection is over the limit
            second.sendall(GET)
            data = read_until_close(second)
            assert data.startswith(b"HTTP/1.1 503 ")
            assert b"Connection: close" in data
        first.sendall(GET)  # the connection within the limit is still served
        assert read_responses(first, 1).startswith(b"HTTP/1.1 200 ")


def test_limit_max_requests_stops_the_server_after_that_many() -> None:
    server = Server(Config(app=hello, port=0, lifespan="off", install_signal_handlers=False,
                           limit_max_requests=2, timeout_graceful_shutdown=2.0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert server.wait_started(5)
        port = server.port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(GET)
            assert read_responses(sock, 1).startswith(b"HTTP/1.1 200 ")
            sock.sendall(GET)
            last = read_until_close(sock)  # the server is shutting down: close
            assert last.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in last
        thread.join(5)
        assert not thread.is_alive()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        server.stop()
        thread.join(5)


def test_proxy_headers_from_trusted_peer_set_client_and_scheme() -> None:
    with running(whoami, proxy_headers=True) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n"
                     b"X-Forwarded-Proto: https\r\n\r\n")
        info = _json_body(read_responses(sock, 1))
        assert info["client"] == ["10.0.0.1", 0]  # the last hop, added by the trusted proxy
        assert info["scheme"] == "https"


def test_proxy_headers_ignored_from_untrusted_peer() -> None:
    with running(whoami, proxy_headers=True, forwarded_allow_ips=["192.0.2.1"]) as server, \
            connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n"
                     b"X-Forwarded-Proto: https\r\n\r\n")
        info = _json_body(read_responses(sock, 1))
        assert info["client"][0] == "127.0.0.1"
        assert info["scheme"] == "http"


def test_proxy_headers_on_by_default_trusting_loopback_as_uvicorn() -> None:
    """Issue 13: uvicorn believes X-Forwarded-* by default, from 127.0.0.1 only."""
    with running(whoami) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n")
        assert _json_body(read_responses(sock, 1))["client"][0] == "203.0.113.7"


def test_no_proxy_headers_ignores_x_forwarded_for() -> None:
    with running(whoami, proxy_headers=False) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n")
        assert _json_body(read_responses(sock, 1))["client"][0] == "127.0.0.1"


def test_uds_serves_over_a_unix_socket() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "onehop.sock")
        with running(hello, uds=path), socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(GET + GET)
            data = read_responses(sock, 2)
            assert data.count(b"HTTP/1.1 200 ") == 2


def test_fd_serves_on_an_inherited_listening_socket() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        with running(hello, fd=listener.fileno()), \
                socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(GET)
            assert read_responses(sock, 1).startswith(b"HTTP/1.1 200 ")
    finally:
        listener.close()


async def echo(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def test_body_timeout_answers_408_and_closes_when_the_body_stalls() -> None:
    with running(echo, body_timeout=0.3) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        started = time.monotonic()
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 408 ")
        assert b"Connection: close" in data
        assert 0.2 < time.monotonic() - started < 3


def test_body_timeout_restarts_with_every_piece_of_body() -> None:
    with running(echo, body_timeout=0.5) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        for piece in (b"a", b"b", b"c", b"d"):  # 1.2 s in all, 0.3 s between pieces
            time.sleep(0.3)
            sock.sendall(piece)
        data = read_responses(sock, 1)
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"abcd")
        assert not is_closed(sock, timeout=0.2)


def test_body_timeout_does_not_apply_to_keep_alive_idle_time() -> None:
    with running(echo, body_timeout=0.2, timeout_keep_alive=5) as server, \
            connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        assert read_responses(sock, 1).endswith(b"hi")
        assert not is_closed(sock, timeout=0.5)  # idle longer than body_timeout: still open


@pytest.mark.parametrize(("allow", "xff", "client"), [
    (["127.0.0.1"], "203.0.113.7, 10.0.0.1", "10.0.0.1"),      # 10.0.0.1 not trusted
    (["127.0.0.1", "10.0.0.0/8"], "203.0.113.7, 10.0.0.1", "203.0.113.7"),  # CIDR skipped
    (["*"], "203.0.113.7, 10.0.0.1", "203.0.113.7"),           # trust all: left-most
    (["127.0.0.1", "10.0.0.1"], "10.0.0.2, 10.0.0.1", "10.0.0.2"),
], ids=["right-most-untrusted", "cidr-network", "star", "chain"])
def test_proxy_headers_take_the_first_untrusted_hop_from_the_right_as_uvicorn(
    allow: list[str], xff: str, client: str,
) -> None:
    # uvicorn's ProxyHeadersMiddleware: proxies append the address they saw, so the
    # client is the right-most entry that is not itself a trusted proxy.
    with running(whoami, forwarded_allow_ips=allow) as server, connect(server) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {xff}\r\n\r\n".encode())
        assert _json_body(read_responses(sock, 1))["client"] == [client, 0]


def test_proxy_headers_do_not_apply_with_no_proxy_headers() -> None:
    with running(whoami, proxy_headers=False) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n"
                     b"X-Forwarded-Proto: https\r\n\r\n")
        info = _json_body(read_responses(sock, 1))
    assert info["client"][0] == "127.0.0.1" and info["scheme"] == "http"
