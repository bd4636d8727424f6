"""The serving endpoint's rules, checked for every role built on it: the ASGI server and
the proxy's client side (a ``role`` fixture, as uvicorn runs its suite over both of its
protocol classes). Malformed input, the header and body timeouts, lingering close
(RFC 9112 §9.6), idle keep-alive, graceful shutdown, the overload answer and in-order
pipelining (RFC 9112 §9.3.2) are written once, in ``onehop._aio.endpoint``, so each
must hold in both."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.server.helpers import is_closed, read_responses, read_until_close, running

pytestmark = pytest.mark.timeout(30)


async def app(scope: Any, receive: Any, send: Any) -> None:
    """``/slow?S`` answers after S seconds; ``/early`` answers without reading the body;
    anything else reads the whole body and answers with the path and the body's length."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    size = 0
    if path == "/slow":
        await asyncio.sleep(float(scope["query_string"] or b"1"))
    elif path != "/early":
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
    body = f"{path} {size}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@dataclass
class Target:
    """Where the role under test listens, and how to begin its graceful shutdown."""

    port: int
    shutdown: Callable[[], None]

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


@contextlib.contextmanager
def _asgi(rules: dict[str, Any]) -> Iterator[Target]:
    config = {
        "header_timeout": rules.get("header_timeout", 10.0),
        "body_timeout": rules.get("body_timeout", 30.0),
        "timeout_keep_alive": rules.get("idle_timeout", 5.0),
        "limit_concurrency": rules.get("limit_concurrency"),
        "timeout_graceful_shutdown": rules.get("grace", 2.0),
    }
    with running(app, **config) as server:
        yield Target(server.port, server.stop)


@contextlib.contextmanager
def _proxy(rules: dict[str, Any]) -> Iterator[Target]:
    from onehop.proxy import ProxyConfig
    from tests.proxy.helpers import ProxyThread

    with running(app, timeout_keep_alive=30) as origin:
        cfg = ProxyConfig(upstreams={"default": [f"http://127.0.0.1:{origin.port}"]})
        t = cfg.timeouts
        t.client_header = rules.get("header_timeout", 10.0)
        t.client_body = rules.get("body_timeout", 30.0)
        t.client_idle = rules.get("idle_timeout", 5.0)
        t.graceful_shutdown = rules.get("grace", 2.0)
        cfg.limits.concurrency = rules.get("limit_concurrency")
        with ProxyThread(cfg) as p:

            def shutdown() -> None:
                asyncio.run_coroutine_threadsafe(p.proxy.aclose(), p.loop)

            yield Target(p.port, shutdown)


@pytest.fixture(params=["asgi", "proxy"])
def serve(
    request: pytest.FixtureRequest,
) -> Callable[..., contextlib.AbstractContextManager[Target]]:
    """``serve(**rules)``: the role under test with these connection rules."""
    return lambda **rules: (_asgi if request.param == "asgi" else _proxy)(rules)


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_malformed_request_gets_its_status_with_date_and_close_rfc9112_2_2(serve: Any) -> None:
    with serve() as target, target.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n")  # obs-fold, RFC 9112 §5.2
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nConnection: close\r\n" in data and b"\r\nDate: " in data


def test_bad_request_line_refused_before_the_head_ends_rfc9112_3(serve: Any) -> None:
    with serve(header_timeout=10.0) as target, target.connect() as sock:
        t0 = time.monotonic()
        sock.sendall(b"GET /x HTTP/1.\x001\r\nHost: h\r\n")
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 400 ") and time.monotonic() - t0 < 2.0


def test_head_dripped_byte_by_byte_gets_408_after_the_header_timeout(serve: Any) -> None:
    # Slow-loris: each piece of the head must not restart the clock (armed once per head).
    with serve(header_timeout=0.6) as target, target.connect() as sock:
        t0 = time.monotonic()
        for byte in GET[:-4]:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)
            if time.monotonic() - t0 > 3:
                break
        data = read_until_close(sock)
        waited = time.monotonic() - t0
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert 0.5 <= waited < 2.5


def test_stalled_request_body_gets_408_after_the_body_timeout(serve: Any) -> None:
    with serve(body_timeout=0.5) as target, target.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        t0 = time.monotonic()
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert time.monotonic() - t0 < 3.0


def test_early_answer_closes_with_lingering_so_an_uploading_client_reads_it_rfc9112_9_6(
    serve: Any,
) -> None:
    # The answer comes before the 4 MB body is read; closing at once would reset the
    # connection, possibly before the client read the answer. The endpoint shuts its side
    # and discards the rest for a while instead.
    size = 4 * 1024 * 1024
    with serve() as target, target.connect() as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        sent = [0]

        def upload() -> None:
            chunk = b"x" * 65536
            with contextlib.suppress(OSError):
                while sent[0] < size:
                    sock.sendall(chunk)
                    sent[0] += len(chunk)

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()
        data = read_until_close(sock, timeout=10)
        uploader.join(10)
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert data.endswith(b"/early 0")


def test_early_answer_with_a_short_body_rest_keeps_the_connection_rfc9112_9_3(
    serve: Any,
) -> None:
    # A rest of the body up to 256 KiB is read and discarded; the connection goes on.
    with serve() as target, target.connect() as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        first = read_responses(sock, 1)
        sock.sendall(b"y" * 1000 + GET)
        second = read_responses(sock, 1)
    assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b"/early 0")
    assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b"/ 0")


def test_idle_keep_alive_connection_closed_after_the_idle_timeout_rfc9112_9_5(
    serve: Any,
) -> None:
    with serve(idle_timeout=0.5) as target, target.connect() as sock:
        sock.sendall(GET)
        assert read_responses(sock, 1).startswith(b"HTTP/1.1 200 ")
        t0 = time.monotonic()
        assert is_closed(sock, timeout=3)
    assert 0.3 <= time.monotonic() - t0 < 2.5


def test_graceful_shutdown_finishes_the_request_in_flight_with_close_rfc9112_9_6(
    serve: Any,
) -> None:
    with serve(grace=5.0) as target, target.connect() as busy, target.connect() as idle:
        idle.sendall(GET)
        assert read_responses(idle, 1).startswith(b"HTTP/1.1 200 ")
        busy.sendall(b"GET /slow?0.8 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        target.shutdown()
        data = read_until_close(busy, timeout=5)
        assert is_closed(idle, timeout=2)  # an idle connection closes at once
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert b"\r\nConnection: close\r\n" in data and data.endswith(b"/slow 0")


def test_over_the_concurrency_limit_answers_503_with_close(serve: Any) -> None:
    with serve(limit_concurrency=1) as target, target.connect() as busy:
        busy.sendall(b"GET /slow?1 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        with target.connect() as other:
            other.sendall(GET)
            data = read_until_close(other)
        assert data.startswith(b"HTTP/1.1 503 ") and b"\r\nConnection: close\r\n" in data
        assert read_responses(busy, 1).startswith(b"HTTP/1.1 200 ")


def test_pipelined_requests_are_answered_in_order_rfc9112_9_3_2(serve: Any) -> None:
    with serve() as target, target.connect() as sock:
        sock.sendall(b"GET /slow?0.3 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                     b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_until_close(sock)
    bodies = [part.rsplit(b"\r\n\r\n", 1)[-1] for part in data.split(b"HTTP/1.1 ")[1:]]
    assert [b[:8] for b in bodies] == [b"/slow 0", b"/b 3", b"/c 0"]
