"""Malformed requests, app failures and timeouts (RFC 9112 §2.2, §3, §6; RFC 9110 §15)."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import pytest

from onehop.core import Limits
from tests.server.helpers import connect, hello, read_until_close, running

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # RFC 9112 §3.2: Host is required
        (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),  # §5.2 obs-fold
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ],
    ids=["missing-host", "obs-fold", "version", "te-gzip", "cl-and-te", "long-uri", "long-field"],
)
def test_malformed_request_gets_status_and_close_rfc9112_2_2(raw: bytes, status: int) -> None:
    with running(hello) as server, connect(server) as sock:
        sock.sendall(raw)
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 %d " % status)
        assert b"\r\nConnection: close\r\n" in data
        assert b"text/plain" in data


def test_body_over_limit_gets_413_rfc9110_15_5_14() -> None:
    with running(hello, limits=Limits(max_body_size=10)) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 413 ")


def test_app_exception_before_start_gives_500_rfc9110_15_6_1() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("boom")

    with running(app) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 500 ")
        assert b"\r\nConnection: close\r\n" in data


def test_app_exception_after_start_aborts_connection_rfc9112_8() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    with running(app) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 200 ")
        assert data.endswith(b"partial")


def test_app_framing_cannot_contradict_content_length_rfc9112_6_3() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2"), (b"transfer-encoding", b"chunked")]})
        await send({"type": "http.response.body", "body": b"too long"})

    with running(app) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_close(sock)
        assert b"chunked" not in data.lower()
        assert b"too long" not in data


def test_slow_request_head_times_out_with_408_rfc9110_15_5_9() -> None:
    with running(hello, header_timeout=0.3) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - start < 3


def test_lingering_close_lets_client_read_response_despite_unread_body_rfc9112_9_6() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-length", b"4"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"nope"})

    with running(app) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
        with contextlib.suppress(OSError):
            sock.sendall(b"x" * 200_000)
        sock.shutdown(socket.SHUT_WR)
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 413 ")
        assert data.endswith(b"nope")
