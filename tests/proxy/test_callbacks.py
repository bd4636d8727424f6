"""Exchanges the proxy runs in event-loop callbacks (a warm pool, a request without
content): each way one can stop needing a task (a slow or silent upstream, a
closed idle connection, 1xx, a large body, a client that leaves) ends as it
does in the task, and the connection goes back to the callbacks after."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from onehop.probe.wire import request
from onehop.proxy import ForwardPolicy, ProxyConfig
from tests.helpers import wait_for
from tests.proxy.helpers import ProxyThread, RawUpstream, read_head

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
Step = Callable[[socket.socket], None]


def _script(*steps: Step) -> Callable[[socket.socket, int], None]:
    """An upstream handler: on one connection, request *i* gets ``steps[i]``."""

    def handler(sock: socket.socket, index: int) -> None:
        for step in steps:
            if not read_head(sock):
                return
            step(sock)
    return handler


def _ok(sock: socket.socket) -> None:
    sock.sendall(OK)


def _proxy(up: RawUpstream, read: float | None = None) -> ProxyThread:
    cfg = ProxyConfig()
    cfg.upstreams = {"default": [f"http://127.0.0.1:{up.port}"]}
    if read is not None:
        cfg.timeouts.read = read
    return ProxyThread(cfg)


def test_head_in_pieces_waits_for_the_rest() -> None:
    def pieces(sock: socket.socket) -> None:
        sock.sendall(OK[:10])
        time.sleep(0.1)
        sock.sendall(OK[10:30])
        time.sleep(0.1)
        sock.sendall(OK[30:])

    with RawUpstream(_script(_ok, pieces, _ok)) as up, _proxy(up) as p, p.wire() as w:
        for target in ("/1", "/2", "/3"):
            w.send(request("GET", target, "o"))
            resp = w.read_response()
            assert (resp.status, resp.body) == (200, b"ok")
    assert up.accepted == 1


def test_silent_warm_upstream_gives_504() -> None:
    with RawUpstream(_script(_ok, lambda s: time.sleep(3))) as up, \
            _proxy(up, read=0.5) as p, p.wire() as w:
        w.send(request("GET", "/1", "o"))
        assert w.read_response().status == 200
        t0 = time.monotonic()
        w.send(request("GET", "/2", "o"))
        resp = w.read_response()
    assert resp.status == 504 and 0.4 <= time.monotonic() - t0 < 2.5


def test_early_hints_then_answer_on_warm_connection_rfc9110_15_2() -> None:
    def hints(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        time.sleep(0.1)
        sock.sendall(OK)

    with RawUpstream(_script(_ok, hints)) as up, _proxy(up) as p, p.wire() as w:
        w.send(request("GET", "/1", "o"))
        assert w.read_response().status == 200
        w.send(request("GET", "/2", "o"))
        resp = w.read_response()
    assert resp.status == 200 and resp.body == b"ok"
    assert [h.start.split()[1] for h in resp.interim] == ["103"]
    assert resp.interim[0].get("Link") == "</a.css>; rel=preload"


def test_large_body_streams_then_connection_serves_again() -> None:
    body = bytes(range(256)) * 1024  # 256 KiB: more than one write gathers

    def large(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 50_000):
            sock.sendall(body[i:i + 50_000])
            time.sleep(0.01)

    with RawUpstream(_script(_ok, large, _ok)) as up, _proxy(up) as p, p.wire() as w:
        w.send(request("GET", "/1", "o"))
        assert w.read_response().status == 200
        w.send(request("GET", "/2", "o"))
        resp = w.read_response()
        assert resp.status == 200 and resp.body == body
        w.send(request("GET", "/3", "o"))
        assert w.read_response().body == b"ok"
    assert up.accepted == 1


def test_pipelined_requests_on_warm_pool_answered_in_order_rfc9112_9_3_2() -> None:
    def echo(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")

    with RawUpstream(_script(*[_ok] + [echo] * 10)) as up, _proxy(up) as p, p.wire() as w:
        w.send(request("GET", "/warm", "o"))
        assert w.read_response().status == 200
        w.send(b"".join(request("GET", f"/{i}", "o") for i in range(3)))
        assert [w.read_response().body for _ in range(3)] == [b"x", b"x", b"x"]


def test_client_leaving_a_warm_exchange_aborts_the_upstream() -> None:
    seen_eof: list[float] = []

    def waits(sock: socket.socket) -> None:
        sock.settimeout(3)
        t0 = time.monotonic()
        if sock.recv(10) == b"":
            seen_eof.append(time.monotonic() - t0)

    with RawUpstream(_script(_ok, waits)) as up, _proxy(up) as p:
        with p.wire() as w:
            w.send(request("GET", "/1", "o"))
            assert w.read_response().status == 200
            w.send(request("GET", "/2", "o"))
            time.sleep(0.2)
        assert wait_for(lambda: bool(seen_eof), 2)
    assert seen_eof[0] < 1.0


def test_malformed_answer_on_warm_connection_gives_502() -> None:
    def bad(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok")

    with RawUpstream(_script(_ok, bad)) as up, _proxy(up) as p, p.wire() as w:
        w.send(request("GET", "/1", "o"))
        assert w.read_response().status == 200
        w.send(request("GET", "/2", "o"))
        assert w.read_response().status == 502


def test_tunnel_outlives_the_client_idle_timeout_rfc9110_9_3_6() -> None:
    def echo(sock: socket.socket, index: int) -> None:
        while data := sock.recv(65536):
            sock.sendall(b"echo:" + data)

    with RawUpstream(echo) as up:
        cfg = ProxyConfig(forward=ForwardPolicy(allow=[f"127.0.0.1:{up.port}"],
                                                connect_ports=None))
        cfg.timeouts.client_idle = 0.3
        with ProxyThread(cfg) as p, p.wire() as w:
            w.send(f"CONNECT 127.0.0.1:{up.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert w.read_head().start.startswith("HTTP/1.1 200")
            time.sleep(0.6)  # a quiet tunnel is not an idle client connection
            w.send(b"ping")
            w.sock.settimeout(3)
            assert w.sock.recv(100) == b"echo:ping"


def test_client_that_does_not_read_stops_the_pipeline() -> None:
    """Flow control (issue 5): a client pipelining requests without reading the answers
    must not make the proxy buffer them all; it takes no new request while the client's
    side is over its write high-water mark."""
    body = b"x" * 16384
    answered: list[int] = []

    def answer(sock: socket.socket, index: int) -> None:
        while read_head(sock):
            answered.append(1)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    count = 2000  # 32 MiB of answers: more than the kernel's buffers on both sockets
    with RawUpstream(answer) as up, _proxy(up) as p:
        client = socket.create_connection(("127.0.0.1", p.port))
        try:
            client.sendall(b"".join(request("GET", f"/{i}", "o") for i in range(count)))
            time.sleep(1.5)  # the proxy answers what fits, then waits for us to read
            stalled = len(answered)
            time.sleep(0.5)
            assert len(answered) == stalled < count // 2
            # Reading lets it go on, in order, to the last answer.
            client.settimeout(10)
            wanted = count * (len(body) + 40)
            got = 0
            while got < wanted * 0.9:
                chunk = client.recv(1 << 20)
                assert chunk
                got += len(chunk)
            assert wait_for(lambda: len(answered) == count, 10)
        finally:
            client.close()
