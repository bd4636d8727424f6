"""One proxied request from start to end (``onehop.proxy.exchange``): timers, each
side's persistence, 1xx, bodies both ways, pipelining, clients that leave, field reuse
(``hop.LastFields``) and flow control. Every test runs with a cold pool and a warm one
(``pool_state``): warm or cold is only whether the pool lends a connection at once."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable

import pytest

from onehop.probe.wire import PeerState, request
from onehop.proxy import ForwardPolicy, ProxyConfig
from onehop.proxy.hop import ForwardedStyle
from tests.helpers import wait_for
from tests.proxy.helpers import ProxyThread, RawUpstream, read_head

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("pool_state")]

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
Answer = Callable[[socket.socket, bytes], bool]  # False: stop serving this connection
Step = Callable[[socket.socket], None]


class Recorder:
    """An upstream handler: records every request head as (connection index, head) and
    answers request *n* (counted over all connections) with ``answers[n]`` (last repeats)."""

    def __init__(self, *answers: bytes | Answer) -> None:
        self.answers = answers
        self.heads: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()

    def __call__(self, sock: socket.socket, index: int) -> None:
        while True:
            head = read_head(sock)
            if not head:
                return
            head, _, body = head.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            while m and len(body) < int(m.group(1)):
                body += sock.recv(65536)
            with self._lock:
                n = len(self.heads)
                self.heads.append((index, head))
            answer = self.answers[min(n, len(self.answers) - 1)]
            if isinstance(answer, bytes):
                sock.sendall(answer)
            elif not answer(sock, head):
                return

    def field(self, n: int, name: bytes) -> list[bytes]:
        head = self.heads[n][1]
        return [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")[1:]
                if line.lower().startswith(name.lower() + b":")]


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


def _proxy(up: RawUpstream, **timeouts: float) -> ProxyThread:
    cfg = ProxyConfig()
    cfg.upstreams = {"default": [f"http://127.0.0.1:{up.port}"]}
    for k, v in timeouts.items():
        setattr(cfg.timeouts, k, v)
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


# --- timers --------------------------------------------------------------------------------


def test_warm_read_timeout_counts_silence_after_a_1xx_rfc9110_15_2() -> None:
    """``timeouts.read`` is the upstream's *silence* (config docs); the task path re-arms it
    for each wait. A 103 at 0.3 s then the answer at 0.7 s (never 0.5 s of silence) must
    give 200 on a warm connection as it does on a cold one."""
    def hints(sock: socket.socket, head: bytes) -> bool:
        time.sleep(0.3)
        sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n")
        time.sleep(0.4)
        sock.sendall(OK)
        return True

    rec = Recorder(hints)
    with RawUpstream(rec) as up, _proxy(up, read=0.5) as p, p.wire() as w:
        w.send(request("GET", "/cold", "o"))  # cold pool: the task path
        assert w.read_response().status == 200
        w.send(request("GET", "/warm", "o"))  # warm pool: the callbacks
        resp = w.read_response()
    assert resp.status == 200 and resp.body == b"ok"


def test_warm_read_timeout_counts_silence_in_a_slow_head() -> None:
    """Same as above with the head arriving in pieces 0.3 s apart (read = 0.5 s)."""
    def pieces(sock: socket.socket, head: bytes) -> bool:
        for i in range(0, len(OK), 12):
            time.sleep(0.3)
            sock.sendall(OK[i:i + 12])
        return True

    rec = Recorder(pieces)
    with RawUpstream(rec) as up, _proxy(up, read=0.5) as p, p.wire() as w:
        w.send(request("GET", "/cold", "o"))
        assert w.read_response().status == 200
        w.send(request("GET", "/warm", "o"))
        resp = w.read_response()
    assert resp.status == 200 and resp.body == b"ok"


# --- persistence ---------------------------------------------------------------------------


def test_warm_http10_client_answered_with_close_then_closed_rfc9112_9_3() -> None:
    rec = Recorder(OK)
    with RawUpstream(rec) as up, _proxy(up) as p:
        with p.wire() as w:
            w.send(request("GET", "/cold", "o"))
            assert w.read_response().status == 200
        with p.wire() as w:
            w.send(request("GET", "/warm", "o", [("Connection", "keep-alive")], "HTTP/1.0"))
            resp = w.read_response()
            assert resp.status == 200 and resp.body == b"ok"
            assert "close" in resp.tokens("Connection")
            assert w.peer_state(1.0) in (PeerState.CLOSED, PeerState.RESET)
        with p.wire() as w:
            w.send(request("GET", "/warm", "o", version="HTTP/1.0"))
            resp = w.read_response()
            assert resp.status == 200 and resp.body == b"ok"
            assert w.peer_state(1.0) in (PeerState.CLOSED, PeerState.RESET)
    assert up.accepted == 1  # the upstream connection lives on (its own persistence)


def test_warm_client_close_ends_only_the_client_connection_rfc9112_9_6() -> None:
    rec = Recorder(OK)
    with RawUpstream(rec) as up, _proxy(up) as p:
        with p.wire() as w:
            w.send(request("GET", "/cold", "o"))
            assert w.read_response().status == 200
            # close, then a pipelined request that must never be answered nor forwarded
            w.send(request("GET", "/last", "o", [("Connection", "close")])
                   + request("GET", "/never", "o"))
            resp = w.read_response()
            assert resp.status == 200 and "close" in resp.tokens("Connection")
            assert w.peer_state(1.0) in (PeerState.CLOSED, PeerState.RESET)
        assert [h.split(b" ")[1] for _, h in rec.heads] == [b"/cold", b"/last"]
        assert not rec.field(1, b"connection")
        with p.wire() as w:
            w.send(request("GET", "/again", "o"))
            assert w.read_response().status == 200
    assert up.accepted == 1


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
], ids=["close", "http10"])
def test_warm_upstream_close_retires_only_the_upstream_connection_rfc9112_9_6(
        answer: bytes) -> None:
    def closes(sock: socket.socket, head: bytes) -> bool:
        sock.sendall(answer)
        time.sleep(0.3)  # keep the socket open a while: the proxy must not wait for EOF
        return False

    rec = Recorder(OK, closes, OK)
    with RawUpstream(rec) as up, _proxy(up) as p, p.wire() as w:
        for target in ("/1", "/2", "/3"):
            w.send(request("GET", target, "o"))
            resp = w.read_response(timeout=2)
            assert resp.status == 200 and resp.body == b"ok"
            assert "close" not in resp.tokens("Connection")
    assert [i for i, _ in rec.heads] == [1, 1, 2]


def test_warm_http10_upstream_close_delimited_answer_relayed_whole_rfc9112_6_3() -> None:
    def unframed(sock: socket.socket, head: bytes) -> bool:
        sock.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello")
        sock.shutdown(socket.SHUT_WR)
        return False

    rec = Recorder(OK, unframed, OK)
    with RawUpstream(rec) as up, _proxy(up) as p, p.wire() as w:
        w.send(request("GET", "/1", "o"))
        assert w.read_response().status == 200
        w.send(request("GET", "/2", "o"))
        resp = w.read_response()
        assert resp.status == 200 and resp.body == b"hello"
        w.send(request("GET", "/3", "o"))
        assert w.read_response().body == b"ok"
    assert [i for i, _ in rec.heads] == [1, 1, 2]


# --- no content: HEAD, 204, 304 --------------------------------------------------------------


@pytest.mark.parametrize("method,answer", [
    ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
    ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n"),
], ids=["head-cl", "head-chunked", "204", "304"])
def test_warm_answer_without_content_keeps_both_connections_rfc9110_6_4_1(
        method: str, answer: bytes) -> None:
    rec = Recorder(OK, answer, OK)
    with RawUpstream(rec) as up, _proxy(up) as p, p.wire() as w:
        w.send(request("GET", "/1", "o"))
        assert w.read_response().status == 200
        w.send(request(method, "/2", "o") + request("GET", "/3", "o"))
        resp = w.read_response(method)
        assert resp.status == int(answer.split()[1])
        if method == "HEAD":
            assert resp.get("Content-Length") in ("5", None)
        nxt = w.read_response()
        assert nxt.status == 200 and nxt.body == b"ok"
        assert w.peer_state(0.2) is PeerState.OPEN  # nothing extra came after
    assert [i for i, _ in rec.heads] == [1, 1, 1]


# --- order -----------------------------------------------------------------------------------


def _echo(sock: socket.socket, head: bytes) -> bool:
    target = head.split(b" ")[1]
    if target.startswith(b"/slow"):
        time.sleep(0.3)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target))
    return True


def test_pipelined_mix_of_callback_and_task_exchanges_answered_in_order_rfc9112_9_3_2() -> None:
    rec = Recorder(_echo)
    targets = ["/a", "/post", "/b", "/slow1", "/c", "/slow2", "/d", "/e"]
    with RawUpstream(rec) as up, _proxy(up) as p, p.wire() as w:
        w.send(request("GET", "/warm", "o"))
        assert w.read_response().body == b"/warm"
        w.send(b"".join(
            request("POST", t, "o", [("Content-Length", "2")], body=b"hi") if t == "/post"
            else request("GET", t, "o") for t in targets))
        got = [w.read_response().body.decode() for _ in targets]
    assert got == targets
    assert [h.split(b" ")[1].decode() for _, h in rec.heads] == ["/warm", *targets]


# --- reused outbound fields (hop.LastFields) -----------------------------------------------------


def test_reused_request_fields_follow_host_and_version_rfc9110_7_6_3() -> None:
    rec = Recorder(OK)
    with RawUpstream(rec) as up, _proxy(up) as p, p.wire() as w:
        for host, version in [("a.test", "HTTP/1.1"), ("a.test", "HTTP/1.1"),
                              ("b.test", "HTTP/1.1"), ("a.test", "HTTP/1.1"),
                              ("a.test", "HTTP/1.0")]:
            w.send(request("GET", "/", host, [("Accept", "*/*")], version))
            assert w.read_response().status == 200
    hosts = [rec.field(i, b"host") for i in range(5)]
    assert hosts == [[b"a.test"], [b"a.test"], [b"b.test"], [b"a.test"], [b"a.test"]]
    assert [rec.field(i, b"x-forwarded-host") for i in range(5)] == hosts
    assert [rec.field(i, b"via") for i in range(5)] == [[b"1.1 onehop"]] * 4 + [[b"1.0 onehop"]]
    assert all(rec.field(i, b"x-forwarded-for") == [b"127.0.0.1"] for i in range(5))


@pytest.mark.parametrize("style", [ForwardedStyle.FORWARDED, ForwardedStyle.XFF])
def test_reused_request_fields_per_client_address_when_trusted_rfc7239_4(
        style: ForwardedStyle) -> None:
    """Each proxy appends its client's address to what it trusts (RFC 7239 §4): the reused
    outbound fields must carry this connection's address, never an earlier one's."""
    name, sent = ((b"forwarded", "for=10.0.0.1") if style is ForwardedStyle.FORWARDED
                  else (b"x-forwarded-for", "10.0.0.1"))
    rec = Recorder(OK)
    with RawUpstream(rec) as up:
        cfg = ProxyConfig()
        cfg.upstreams = {"default": [f"http://127.0.0.1:{up.port}"]}
        cfg.headers.trust_forwarded = True
        cfg.headers.forwarded = style
        with ProxyThread(cfg) as p:
            for source in ("127.0.0.1", "127.0.0.2", "127.0.0.1"):
                s = socket.socket()
                s.bind((source, 0))
                s.connect(("127.0.0.1", p.port))
                s.settimeout(5)
                try:
                    for _ in range(2):
                        s.sendall(request("GET", "/", "o", [(name.decode(), sent)]))
                        buf = b""
                        while not buf.endswith(b"ok"):
                            chunk = s.recv(65536)
                            assert chunk
                            buf += chunk
                finally:
                    s.close()
    if style is ForwardedStyle.FORWARDED:
        want = [[b"for=10.0.0.1", b'for=%s;proto=http;host="o"' % ip.encode()]
                for ip in ("127.0.0.1",) * 2 + ("127.0.0.2",) * 2 + ("127.0.0.1",) * 2]
    else:
        want = [[b"10.0.0.1, " + ip.encode()]
                for ip in ("127.0.0.1",) * 2 + ("127.0.0.2",) * 2 + ("127.0.0.1",) * 2]
    assert [rec.field(i, name) for i in range(6)] == want


def test_reused_request_fields_follow_each_upstreams_authority_rfc9110_7_2() -> None:
    rec = Recorder(OK)
    with RawUpstream(rec) as a, RawUpstream(rec) as b:
        cfg = ProxyConfig()
        cfg.upstreams = {"default": [f"http://127.0.0.1:{a.port}", f"http://127.0.0.1:{b.port}"]}
        cfg.headers.preserve_host = False
        with ProxyThread(cfg) as p, p.wire() as w:
            for _ in range(6):
                w.send(request("GET", "/", "client.test"))
                assert w.read_response().status == 200
        ports = {a.port, b.port}
    hosts = [rec.field(i, b"host")[0] for i in range(6)]
    assert {int(h.split(b":")[1]) for h in hosts} == ports
    assert hosts[2:] == hosts[:2] * 2  # alternating
    assert all(rec.field(i, b"x-forwarded-host") == [b"client.test"] for i in range(6))


def test_reused_response_fields_follow_the_upstreams_version_rfc9110_7_6_3() -> None:
    ka10 = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
    rec = Recorder(OK, OK, ka10, OK)
    with RawUpstream(rec) as up, _proxy(up) as p, p.wire() as w:
        vias = []
        for _ in range(4):
            w.send(request("GET", "/", "o"))
            resp = w.read_response()
            assert resp.status == 200
            vias.append(resp.get("Via"))
    assert vias == ["1.1 onehop", "1.1 onehop", "1.0 onehop", "1.1 onehop"]


# --- write backpressure --------------------------------------------------------------------------


def _on_loop(p: ProxyThread, fn: Callable[[], object]) -> object:
    import asyncio

    async def call() -> object:
        return fn()
    return asyncio.run_coroutine_threadsafe(call(), p.loop).result(5)


def test_error_answer_that_fills_the_write_buffer_is_delivered_whole_rfc9112_9_6() -> None:
    """A client pipelines requests without reading, the last one malformed (and bytes after
    it). The 400 pushes the client side over its write high-water mark and the connection
    closes; once the client reads, the resumed transport must flush the 400 whole and
    close: ``resume_writing`` must not parse the rest again, answer a second time (no
    response can follow the close, RFC 9112 §9.6) or abort what is still buffered."""
    big = b"x" * 60000

    def by_target(sock: socket.socket, head: bytes) -> bool:
        body = big if head.split(b" ")[1] == b"/big" else b"ok"
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return True

    rec = Recorder(by_target)
    bad = (b"GET /bad HTTP/1.1\r\nHost: o\r\n Folded: yes\r\n\r\n"
           b"GET /after HTTP/1.1\r\nHost: o\r\n\r\n")
    with RawUpstream(rec) as up, _proxy(up) as p:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", p.port))
        try:
            assert wait_for(lambda: len(p.proxy.state.connections) == 1, 2)
            inbound = next(iter(p.proxy.state.connections))
            transport = inbound.transport
            _on_loop(p, lambda: transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 4096))

            def size() -> int:
                return int(_on_loop(p, transport.get_write_buffer_size))  # type: ignore[arg-type]

            def ask(target: str, n: int = 1) -> None:
                want = len(rec.heads) + n
                client.sendall(request("GET", target, "o") * n)
                assert wait_for(lambda: len(rec.heads) == want, 5)
                time.sleep(0.05)

            high = 65536  # asyncio's default high-water mark
            while size() == 0:  # fill the kernel's buffers
                ask("/big")
            answer = len(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.1 onehop\r\n\r\nok")
            while size() < high - 200:
                ask("/small", max(1, (high - 200 - size()) // answer - 1))
            assert not inbound.flow.write_paused
            client.sendall(bad)
            assert wait_for(lambda: inbound.flow.write_paused, 2)  # the 400 crossed it
            client.settimeout(5)
            got = bytearray()
            try:
                while chunk := client.recv(1 << 20):
                    got += chunk
            except ConnectionResetError:
                pass
        finally:
            client.close()
    assert got.count(b"HTTP/1.1 400 ") == 1
    assert got.rstrip(b"\n").endswith(
        b"obsolete line folding (field line starting with whitespace)")


def test_half_close_before_the_answer_counts_as_gone(pool_state: str) -> None:
    """Issue 5 ("a client that disconnects mid-request aborts the upstream request"): a FIN
    right after the request, before the answer, cuts the exchange whether the pool lent a
    connection at once (warm) or had to open one (cold), as nginx's 499 does."""

    def slow(sock: socket.socket, head: bytes) -> bool:
        time.sleep(0.3)
        sock.sendall(OK)
        return True

    rec = Recorder(slow)
    with RawUpstream(rec) as up, _proxy(up) as p:
        client = socket.create_connection(("127.0.0.1", p.port))
        try:
            client.sendall(request("GET", "/half", "o"))
            client.shutdown(socket.SHUT_WR)
            client.settimeout(3)
            assert client.recv(100) == b""  # closed, nothing answered
        finally:
            client.close()
        if pool_state == "warm":
            # Lent at once, the request went up before the FIN was read; cold, the exchange
            # ends before the upstream connection opens, so it need not go up at all.
            assert wait_for(lambda: any(b"/half" in h for _, h in rec.heads), 2)
