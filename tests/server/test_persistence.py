"""Connection persistence on real sockets (RFC 9112 §9.3, §9.6; RFC 7230 §A.1.2)."""

from __future__ import annotations

import time

import pytest

from tests.server.helpers import (
    connect,
    hello,
    is_closed,
    read_responses,
    read_until_close,
    running,
    streaming,
)

pytestmark = pytest.mark.timeout(20)

LOOPS = ["asyncio", "uvloop"]


@pytest.mark.parametrize("loop", LOOPS)
def test_http11_persists_by_default_rfc9112_9_3(loop: str) -> None:
    with running(hello, loop=loop) as server, connect(server) as sock:
        for path in ("/a", "/b"):
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
            data = read_responses(sock, 1)
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")
            assert data.endswith(b"GET " + path.encode())
            assert b"connection:" not in data.lower()
        assert not is_closed(sock, 0.2)


@pytest.mark.parametrize("loop", LOOPS)
def test_close_option_ends_connection_after_response_rfc9112_9_6(loop: str) -> None:
    with running(hello, loop=loop) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nConnection: close\r\n" in data
        assert data.endswith(b"GET /")


def test_close_in_any_connection_line_ends_connection_rfc9112_9_6() -> None:
    with running(hello) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: x-foo\r\nX-Foo: 1\r\n"
                     b"Connection: close\r\n\r\n")
        data = read_until_close(sock)
        assert b"\r\nConnection: close\r\n" in data


def test_app_connection_close_ends_connection_rfc9112_9_6() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"connection", b"close"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    with running(app) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_close(sock)
        assert data.lower().count(b"connection: close") == 1
        assert data.endswith(b"ok")


@pytest.mark.parametrize("loop", LOOPS)
def test_http10_without_keep_alive_closes_after_response_rfc9112_9_3(loop: str) -> None:
    with running(hello, loop=loop) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"keep-alive" not in data.lower()


@pytest.mark.parametrize("loop", LOOPS)
def test_http10_keep_alive_persists_with_keep_alive_hint_rfc7230_a_1_2(loop: str) -> None:
    settings = {"timeout_keep_alive": 7, "max_requests_per_connection": 10}
    with running(hello, loop=loop, **settings) as server, connect(server) as sock:
        for i in range(2):
            sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            data = read_responses(sock, 1)
            assert b"\r\nConnection: keep-alive\r\n" in data
            assert b"\r\nKeep-Alive: timeout=7, max=%d\r\n" % (9 - i) in data
            assert b"Transfer-Encoding" not in data
        assert not is_closed(sock, 0.2)


def test_http10_keep_alive_streamed_response_is_close_delimited_never_chunked_rfc9112_6_1() -> None:
    with running(streaming) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = read_until_close(sock)
        assert b"chunked" not in data.lower()
        assert b"\r\nConnection: close\r\n" in data
        assert data.endswith(b"part1-part2")


def test_http10_keep_alive_disabled_closes_rfc9112_9_3() -> None:
    with running(hello, http10_keep_alive=False) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = read_until_close(sock)
        assert b"keep-alive" not in data.lower()


def test_http11_keep_alive_header_is_optional_rfc7230_a_1_2() -> None:
    with running(hello, keep_alive_header="always", timeout_keep_alive=3,
                 max_requests_per_connection=5) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_responses(sock, 1)
        assert b"\r\nKeep-Alive: timeout=3, max=4\r\n" in data


def test_http11_streamed_response_is_chunked_rfc9112_7_1() -> None:
    with running(streaming) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_until_close(sock)
        assert b"\r\nTransfer-Encoding: chunked\r\n" in data
        assert data.endswith(b"6\r\npart1-\r\n5\r\npart2\r\n0\r\n\r\n")


@pytest.mark.parametrize("loop", LOOPS)
def test_last_request_allowed_on_connection_says_close_rfc9112_9_6(loop: str) -> None:
    with running(hello, loop=loop, max_requests_per_connection=2) as server, \
            connect(server) as sock:
        sock.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_responses(sock, 1)
        assert b"Connection: close" not in first
        sock.sendall(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        second = read_until_close(sock)
        assert b"\r\nConnection: close\r\n" in second


def test_idle_connection_closed_after_keep_alive_timeout_rfc9112_9_8() -> None:
    with running(hello, timeout_keep_alive=0.3) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_responses(sock, 1)
        start = time.monotonic()
        assert is_closed(sock, 3)
        assert time.monotonic() - start < 2


@pytest.mark.parametrize("loop", LOOPS)
def test_pipelined_requests_answered_in_order_rfc9112_9_3_2(loop: str) -> None:
    with running(hello, loop=loop) as server, connect(server) as sock:
        sock.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
        data = read_responses(sock, 5)
        bodies = [part.split(b"\r\n\r\n")[0] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
        assert len(bodies) == 5
        for i in range(5):
            assert data.index(b"GET /%d" % i) < data.index(b"GET /%d" % (i + 1)) if i < 4 else True


@pytest.mark.parametrize("loop", LOOPS)
def test_bytes_after_close_request_are_never_processed_rfc9112_9_6(loop: str) -> None:
    seen: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["path"])
        await hello(scope, receive, send)

    with running(app, loop=loop) as server, connect(server) as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                     b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_close(sock)
        assert data.count(b"HTTP/1.1 ") == 1
        assert seen == ["/first"]


def test_response_body_to_head_request_is_dropped_rfc9110_9_3_2() -> None:
    with running(hello) as server, connect(server) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_responses(sock, 1)
        sock.settimeout(5)
        while b"GET /next" not in data:
            data += sock.recv(65536)
        assert b"HEAD /" not in data
        assert data.count(b"HTTP/1.1 200") == 2
