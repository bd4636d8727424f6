"""100-continue, request bodies, disconnects, lifespan and graceful shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from tests.server.helpers import (
    connect,
    hello,
    is_closed,
    read_responses,
    read_until_close,
    running,
)

pytestmark = pytest.mark.timeout(20)


async def echo(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def test_100_continue_sent_only_when_app_reads_body_rfc9110_10_1_1() -> None:
    with running(echo) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        sock.settimeout(5)
        interim = sock.recv(1024)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        data = read_responses(sock, 1)
        assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"hello")


def test_no_100_continue_when_app_answers_without_reading_rfc9110_10_1_1() -> None:
    with running(hello) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        data = read_responses(sock, 1)
        assert data.startswith(b"HTTP/1.1 200 OK")
        assert b"100 Continue" not in data


def test_chunked_request_body_reaches_app_and_connection_persists_rfc9112_7_1() -> None:
    with running(echo) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        data = read_responses(sock, 1)
        assert data.endswith(b"abcde")
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz")
        assert read_responses(sock, 1).endswith(b"xyz")


def test_unread_request_body_is_skipped_before_next_request_rfc9112_6_3() -> None:
    with running(hello) as server, connect(server) as sock:
        sock.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
                     b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_responses(sock, 2)
        assert b"POST /a" in data and b"GET /b" in data


def test_large_request_body_flows_through_flow_control() -> None:
    with running(echo) as server, connect(server) as sock:
        body = b"x" * 1_000_000
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        sender = threading.Thread(target=sock.sendall, args=(body,))
        sender.start()
        data = read_responses(sock, 1, timeout=10)
        sender.join()
        assert data.endswith(body)


def test_client_disconnect_reaches_app_as_http_disconnect() -> None:
    got: list[str] = []
    done = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()
        got.append(message["type"])
        done.set()

    with running(app) as server:
        with connect(server) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            time.sleep(0.1)
        assert done.wait(5)
        assert got == ["http.disconnect"]


def test_scope_carries_all_fields_and_connection_extension_rfc9110_7_6_1() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await hello(scope, receive, send)

    with running(app) as server, connect(server) as sock:
        sock.sendall(b"GET /p%20q?a=1 HTTP/1.1\r\nHost: x\r\nConnection: x-hop\r\nX-Hop: 1\r\n"
                     b"X-E2e: 2\r\n\r\n")
        read_responses(sock, 1)
    scope = scopes[0]
    assert scope["path"] == "/p q" and scope["raw_path"] == b"/p%20q"
    assert scope["query_string"] == b"a=1"
    assert scope["http_version"] == "1.1"
    names = [name for name, _ in scope["headers"]]
    assert sorted(names) == sorted([b"host", b"connection", b"x-hop", b"x-e2e"])
    ext = scope["extensions"]["onehop.connection"]
    assert ext["options"] == [b"x-hop"]
    assert sorted(ext["fields"]) == [(b"connection", b"x-hop"), (b"x-hop", b"1")]


def test_lifespan_startup_and_shutdown_run() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = "hi"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["state"]["greeting"].encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": body})

    with running(app, lifespan="on") as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_responses(sock, 1).endswith(b"hi")
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_graceful_shutdown_closes_idle_and_finishes_in_flight_with_close_rfc9112_9_6() -> None:
    started = threading.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        await asyncio.sleep(0.3)
        await hello(scope, receive, send)

    with running(slow) as server:
        idle = connect(server)
        busy = connect(server)
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert started.wait(5)
        server.stop()
        assert is_closed(idle, 2)
        data = read_until_close(busy)
        assert data.startswith(b"HTTP/1.1 200 ")
        assert b"\r\nConnection: close\r\n" in data
        idle.close()
        busy.close()


def test_graceful_shutdown_cuts_after_grace_period() -> None:
    async def forever(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(60)

    with running(forever, timeout_graceful_shutdown=0.3) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        start = time.monotonic()
        server.stop()
        assert is_closed(sock, 3)
        assert time.monotonic() - start < 2.5
