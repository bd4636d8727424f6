"""The reverse proxy on real sockets: persistence per side (RFC 9112 §9), HTTP/1.0 clients,
smuggling, failures (502/504, retry), disconnects, round-robin with back-off."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator

import pytest

from onehop.probe.origin import PREFIX, RecordingOrigin, body_for
from onehop.probe.wire import PeerState, request
from onehop.proxy import ProxyConfig
from tests.proxy.helpers import ProxyThread, RawUpstream, free_port, read_head

pytestmark = pytest.mark.usefixtures("pool_state")

_n = itertools.count()


@pytest.fixture(scope="module")
def origin() -> Iterator[RecordingOrigin]:
    with RecordingOrigin(0) as o:
        yield o


@pytest.fixture(scope="module")
def proxy(origin: RecordingOrigin) -> Iterator[ProxyThread]:
    with ProxyThread(upstreams=[f"http://127.0.0.1:{origin.port}"]) as p:
        yield p


def _tok() -> str:
    return f"rv{next(_n)}"


def test_client_close_ends_only_client_connection_rfc9112_9_6(
        proxy: ProxyThread, origin: RecordingOrigin) -> None:
    a, b = _tok(), _tok()
    with proxy.wire() as w:
        w.send(request("GET", PREFIX + a, "o", [("Connection", "close")]))
        resp = w.read_response()
        assert "close" in resp.tokens("Connection")
        assert w.peer_state(0.5) in (PeerState.CLOSED, PeerState.RESET)
    with proxy.wire() as w:
        w.send(request("GET", PREFIX + b, "o"))
        assert w.read_response().status == 200
    sa, sb = origin.wait_for(a), origin.wait_for(b)
    assert sa[0].head.get("Connection") is None  # the client's close is not forwarded
    assert sa[0].conn_id == sb[0].conn_id  # the upstream connection survived


def test_upstream_pool_reused_across_client_connections_rfc9112_9_3(
        proxy: ProxyThread, origin: RecordingOrigin) -> None:
    toks = [_tok() for _ in range(3)]
    for t in toks:
        with proxy.wire() as w:
            w.send(request("GET", PREFIX + t, "o"))
            assert w.read_response().status == 200
    ids = {origin.wait_for(t)[0].conn_id for t in toks}
    assert len(ids) == 1


def test_upstream_close_retires_only_upstream_connection_rfc9112_9_6(
        proxy: ProxyThread, origin: RecordingOrigin) -> None:
    a, b = _tok(), _tok()
    with proxy.wire() as w:
        w.send(request("GET", PREFIX + a + "?conn=close", "o"))
        first = w.read_response()
        assert "close" not in first.tokens("Connection")
        w.send(request("GET", PREFIX + b, "o"))
        assert w.read_response().status == 200
    assert origin.wait_for(a)[0].conn_id != origin.wait_for(b)[0].conn_id


def test_http10_client_gets_close_and_dechunked_body_rfc9112_9_3(
        proxy: ProxyThread, origin: RecordingOrigin) -> None:
    t = _tok()
    with proxy.wire() as w:
        w.send(request("GET", PREFIX + t + "?body=chunked", "o",
                       [("Connection", "keep-alive")], "HTTP/1.0"))
        resp = w.read_response()
        assert resp.get("Transfer-Encoding") is None
        assert "close" in resp.tokens("Connection")
        assert resp.body == body_for(t)
        assert w.peer_state(0.5) in (PeerState.CLOSED, PeerState.RESET)


@pytest.mark.parametrize("raw", [
    b"POST /{T} HTTP/1.1\r\nHost: o\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: o\r\n\r\n",
    b"POST /{T} HTTP/1.1\r\nHost: o\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST /{T} HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    b"GET /{T} HTTP/1.1\r\nHost: o\r\n Folded: yes\r\n\r\n",
    b"GET /{T} HTTP/1.1\r\nHost: o\r\nX: a\nY: b\r\n\r\n",
    b"POST /{T} HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
], ids=["cl-and-te", "double-cl", "te-not-chunked-last", "obs-fold", "bare-lf", "bad-chunk"])
def test_smuggling_inputs_never_reach_upstream(
        proxy: ProxyThread, origin: RecordingOrigin, raw: bytes) -> None:
    t = _tok()
    with proxy.wire() as w:
        w.send(raw.replace(b"/{T}", (PREFIX + t).encode()))
        resp = w.read_response()
    assert resp.status in (400, 501)  # 501: an unknown transfer coding (RFC 9112 §6.1)
    time.sleep(0.1)
    if b"zz" in raw:
        # The head was valid and went on; the bad chunk cut the upstream off mid-body.
        assert all(s.head.get("Transfer-Encoding") == "chunked" for s in origin.requests(t))
    else:
        assert not origin.requests(t)
    assert not origin.requests("smuggled")


def test_refused_upstream_gives_502_with_text_body() -> None:
    with ProxyThread(upstreams=[f"http://127.0.0.1:{free_port()}"]) as p:
        resp = p.get("/")
    assert resp.status == 502 and resp.body.startswith(b"Bad Gateway")


def _malformed(sock: socket.socket, index: int) -> None:
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")


def test_malformed_upstream_response_gives_502() -> None:
    with RawUpstream(_malformed) as up, ProxyThread(upstreams=[f"http://127.0.0.1:{up.port}"]) as p:
        assert p.get("/").status == 502


def _silent(sock: socket.socket, index: int) -> None:
    read_head(sock)
    time.sleep(3)


def test_upstream_timeout_gives_504() -> None:
    cfg = ProxyConfig()
    cfg.timeouts.read = 0.5
    with RawUpstream(_silent) as up:
        cfg.upstreams = {"default": [f"http://127.0.0.1:{up.port}"]}
        with ProxyThread(cfg) as p:
            t0 = time.monotonic()
            resp = p.get("/")
    assert resp.status == 504 and time.monotonic() - t0 < 2.5


def _closes_second(sock: socket.socket, index: int) -> None:
    """Answers once per connection, then drops the next request unanswered (keep-alive race)."""
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    read_head(sock)
    sock.close()


def test_idempotent_request_retried_once_on_new_connection_rfc9112_9_3_1() -> None:
    with RawUpstream(_closes_second) as up, \
            ProxyThread(upstreams=[f"http://127.0.0.1:{up.port}"]) as p:
        with p.wire() as w:
            w.send(request("GET", "/1", "o"))
            assert w.read_response().status == 200
            w.send(request("GET", "/2", "o"))
            resp = w.read_response()
        assert resp.status == 200 and resp.body == b"ok"
        assert up.accepted == 2


def test_non_idempotent_request_not_retried_gets_502() -> None:
    with RawUpstream(_closes_second) as up, \
            ProxyThread(upstreams=[f"http://127.0.0.1:{up.port}"]) as p:
        with p.wire() as w:
            w.send(request("GET", "/1", "o"))
            assert w.read_response().status == 200
            w.send(request("POST", "/2", "o", [("Content-Length", "2")], body=b"hi"))
            assert w.read_response().status == 502
        assert up.accepted == 1


def test_client_disconnect_aborts_upstream_request() -> None:
    seen_eof: list[float] = []

    def waits(sock: socket.socket, index: int) -> None:
        read_head(sock)
        sock.settimeout(3)
        t0 = time.monotonic()
        if sock.recv(10) == b"":
            seen_eof.append(time.monotonic() - t0)

    with RawUpstream(waits) as up, ProxyThread(upstreams=[f"http://127.0.0.1:{up.port}"]) as p:
        with p.wire() as w:
            w.send(request("GET", "/slow", "o"))
            time.sleep(0.2)
        deadline = time.monotonic() + 2
        while not seen_eof and time.monotonic() < deadline:
            time.sleep(0.05)
    assert seen_eof and seen_eof[0] < 1.0


def test_round_robin_skips_refusing_upstream(origin: RecordingOrigin) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with ProxyThread(upstreams=[dead, f"http://127.0.0.1:{origin.port}"]) as p:
        statuses = [p.get(PREFIX + _tok()).status for _ in range(4)]
        up = p.proxy.groups["default"].members[0]
    assert statuses == [200] * 4
    assert up.failures >= 1 and up.down_until > 0


def test_pipelined_requests_answered_in_order_rfc9112_9_3_2(
        proxy: ProxyThread, origin: RecordingOrigin) -> None:
    toks = [_tok() for _ in range(3)]
    with proxy.wire() as w:
        w.send(b"".join(request("GET", PREFIX + t, "o") for t in toks))
        got = [w.read_response().get("X-Probe-Token") for _ in toks]
    assert got == toks
