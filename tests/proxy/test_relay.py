"""1xx responses and trailer fields through the proxy, on raw sockets both sides.

RFC 9110 §15.2: a proxy forwards 1xx responses, but never to an HTTP/1.0
client. RFC 9110 §6.5 / RFC 9112 §7.1.2: trailer fields travel only in
chunked messages; connection-specific ones stop at the hop, like header
fields (RFC 9110 §7.6.1). TE is hop-by-hop (RFC 9110 §10.1.4), so the proxy
asks the upstream for trailers only on its client's behalf.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tests.proxy.helpers import ProxyThread, RawUpstream, read_head

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("pool_state")]


class Scripted:
    """An upstream that records each request (head, and body when chunked) and answers
    every request on the connection with the same canned bytes."""

    def __init__(self, answer: bytes, read_chunked_body: bool = False) -> None:
        self.answer = answer
        self.read_chunked_body = read_chunked_body
        self.requests: list[bytes] = []

    def __call__(self, sock: socket.socket, index: int) -> None:
        while True:
            raw = read_head(sock)
            if not raw:
                return
            while self.read_chunked_body and not _chunked_end(raw.partition(b"\r\n\r\n")[2]):
                data = sock.recv(65536)
                if not data:
                    return
                raw += data
            self.requests.append(raw)
            sock.sendall(self.answer)

    def wait(self, n: int = 1, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.requests


def _chunked_end(body: bytes) -> bool:
    """Whether a chunked *body* (these tests' bodies: one chunk) has ended: the last
    chunk, then the trailer section up to its empty line."""
    return (body.startswith(b"0\r\n") or b"\r\n0\r\n" in body) and body.endswith(b"\r\n\r\n")


def recv_until(sock: socket.socket, done: Callable[[bytes], bool], timeout: float = 5.0) -> bytes:
    """Read from *sock* until ``done(everything so far)`` or EOF; fail on timeout."""
    sock.settimeout(timeout)
    buf = b""
    while not done(buf):
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    return buf


@pytest.fixture
def make_proxy() -> Iterator[Callable[[Scripted], tuple[ProxyThread, RawUpstream]]]:
    started: list[tuple[ProxyThread, RawUpstream]] = []

    def make(handler: Scripted) -> tuple[ProxyThread, RawUpstream]:
        up = RawUpstream(handler).__enter__()
        try:
            p = ProxyThread(upstreams=[f"http://127.0.0.1:{up.port}"]).__enter__()
        except BaseException:
            up.__exit__()
            raise
        started.append((p, up))
        return p, up

    yield make
    for p, up in started:
        p.__exit__()
        up.__exit__()


def _ask(port: int, raw: bytes, done: Callable[[bytes], bool]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        return recv_until(s, done)


def _ends_with_body(body: bytes) -> Callable[[bytes], bool]:
    return lambda buf: buf.endswith(body)


HINTS = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")
FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_103_early_hints_forwarded_to_http11_client_rfc9110_15_2(make_proxy: Callable[
        [Scripted], tuple[ProxyThread, RawUpstream]]) -> None:
    """RFC 9110 §15.2: "A proxy MUST forward 1xx responses unless the proxy itself
    requested the generation of the 1xx response." 102 and 103 arrive in order, each
    with our Via, before the final response."""
    up = Scripted(b"HTTP/1.1 102 Processing\r\n\r\n" + HINTS + FINAL)
    p, _ = make_proxy(up)
    out = _ask(p.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", _ends_with_body(b"\r\n\r\nok"))
    assert out.startswith(b"HTTP/1.1 102 ")
    i103 = out.index(b"HTTP/1.1 103 ")
    i200 = out.index(b"HTTP/1.1 200 ")
    assert out.index(b"HTTP/1.1 102 ") < i103 < i200
    hints = out[i103:i200]
    assert b"Link: </style.css>; rel=preload; as=style\r\n" in hints
    assert b"Via: 1.1 onehop\r\n" in hints
    assert out.endswith(b"ok")


def test_1xx_forwarded_before_an_upgrade_refusal_rfc9110_15_2(make_proxy: Callable[
        [Scripted], tuple[ProxyThread, RawUpstream]]) -> None:
    """The Upgrade path (its own upstream connection) forwards 1xx responses too
    (RFC 9110 §15.2), then relays the upstream's refusal (a final 200)."""
    up = Scripted(HINTS + FINAL)
    p, _ = make_proxy(up)
    out = _ask(p.port, b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                       b"Upgrade: websocket\r\n\r\n", _ends_with_body(b"\r\n\r\nok"))
    assert out.startswith(b"HTTP/1.1 103 ")
    assert out.index(b"HTTP/1.1 200 ") > out.index(b"Link: </style.css>")
    assert b"upgrade: websocket" in up.wait()[0].lower()


def test_1xx_never_sent_to_http10_client_rfc9110_15_2(make_proxy: Callable[
        [Scripted], tuple[ProxyThread, RawUpstream]]) -> None:
    """RFC 9110 §15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client."
    The proxy drops the upstream's 103 and still relays the final response."""
    up = Scripted(HINTS + FINAL)
    p, _ = make_proxy(up)
    out = _ask(p.port, b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", _ends_with_body(b"\r\n\r\nok"))
    assert out.startswith(b"HTTP/1.1 200 ")
    assert b" 103 " not in out and b"Link:" not in out


def test_upstream_100_continue_not_relayed_proxy_answers_expect_itself_rfc9110_10_1_1(
        make_proxy: Callable[[Scripted], tuple[ProxyThread, RawUpstream]]) -> None:
    """The proxy handles ``Expect: 100-continue`` itself (RFC 9110 §10.1.1: it sends
    100 when it starts forwarding the body) and never forwards Expect, so an
    upstream's own 100 answers nothing the client asked: the client sees exactly one
    100 (the proxy's) when it expected one, and none when it did not."""
    up = Scripted(b"HTTP/1.1 100 Continue\r\n\r\n" + FINAL)
    p, _ = make_proxy(up)
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        first = recv_until(s, lambda b: b"\r\n\r\n" in b)
        assert first.startswith(b"HTTP/1.1 100 ")
        s.sendall(b"abc")
        # (The upstream answers without reading the body, and the proxy relays an answer
        # as soon as it comes, RFC 9112 §9.3: the 200 may have come with the 100.)
        done = _ends_with_body(b"\r\n\r\nok")
        out = first if done(first) else first + recv_until(s, lambda b: done(first + b))
    assert out.count(b" 100 ") == 1
    assert b"expect" not in up.wait()[0].lower()
    out = _ask(p.port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
               _ends_with_body(b"\r\n\r\nok"))
    assert out.startswith(b"HTTP/1.1 200 ")


TRAILED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: X-Secret\r\n"
           b"Trailer: X-Checksum\r\n\r\n"
           b"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\nKeep-Alive: timeout=5\r\n"
           b"X-Secret: s\r\nContent-Length: 99\r\n\r\n")


def test_trailers_forwarded_to_chunked_client_minus_hop_by_hop_rfc9110_6_5(
        make_proxy: Callable[[Scripted], tuple[ProxyThread, RawUpstream]]) -> None:
    """RFC 9110 §6.5 / RFC 9112 §7.1.2: trailer fields go on in the chunked response;
    RFC 9110 §7.6.1: hop-by-hop fields (Keep-Alive) and fields the upstream's
    Connection named (X-Secret) stop at the proxy, in trailers as in headers; a
    Content-Length trailer (forbidden there, RFC 9110 §6.5.1) is dropped too. The
    client sent ``TE: trailers``, so the proxy asks the upstream with ``TE: trailers``."""
    up = Scripted(TRAILED)
    p, _ = make_proxy(up)
    out = _ask(p.port, b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: TE\r\n\r\n",
               lambda b: _chunked_end(b.partition(b"\r\n\r\n")[2]))
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body.startswith(b"5\r\nhello\r\n0\r\n")
    trailers = body[body.index(b"0\r\n") + 3:]
    assert b"X-Checksum: abc123\r\n" in trailers
    for gone in (b"Keep-Alive", b"X-Secret", b"Content-Length"):
        assert gone not in trailers
    sent = up.wait()[0]
    assert b"\r\nTE: trailers\r\n" in sent


def test_te_trailers_sent_upstream_only_when_client_sent_it_rfc9110_10_1_4(
        make_proxy: Callable[[Scripted], tuple[ProxyThread, RawUpstream]]) -> None:
    """TE is hop-by-hop (RFC 9110 §10.1.4): the proxy regenerates it and claims
    ``trailers`` upstream only on behalf of a client that claimed it."""
    up = Scripted(FINAL)
    p, _ = make_proxy(up)
    _ask(p.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", _ends_with_body(b"\r\n\r\nok"))
    _ask(p.port, b"GET / HTTP/1.1\r\nHost: a\r\nTE: gzip\r\nConnection: TE\r\n\r\n",
         _ends_with_body(b"\r\n\r\nok"))
    for sent in up.wait(2):
        assert b"\nte:" not in sent.lower()


def test_trailers_dropped_for_http10_client_rfc9112_7_1_2(
        make_proxy: Callable[[Scripted], tuple[ProxyThread, RawUpstream]]) -> None:
    """Only chunked framing carries trailers (RFC 9112 §7.1.2) and an HTTP/1.0 client
    never gets chunked (RFC 9112 §6.1): the body arrives close-delimited, the trailer
    fields are discarded (RFC 9110 §6.5.1 lets a recipient discard them)."""
    up = Scripted(TRAILED)
    p, _ = make_proxy(up)
    out = _ask(p.port, b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", lambda b: False)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"chunked" not in head
    assert body == b"hello"


def test_request_trailers_forwarded_upstream_minus_hop_by_hop_rfc9110_6_5(
        make_proxy: Callable[[Scripted], tuple[ProxyThread, RawUpstream]]) -> None:
    """A client's chunked request trailers go on in the (chunked) upstream request,
    without hop-by-hop fields or those its Connection named (RFC 9110 §6.5, §7.6.1)."""
    up = Scripted(FINAL, read_chunked_body=True)
    p, _ = make_proxy(up)
    out = _ask(p.port, b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                       b"Connection: X-Private\r\n\r\n"
                       b"3\r\nabc\r\n0\r\nX-Digest: sha-256=xyz\r\nKeep-Alive: 1\r\n"
                       b"X-Private: p\r\n\r\n", _ends_with_body(b"\r\n\r\nok"))
    assert out.startswith(b"HTTP/1.1 200 ")
    sent = up.wait()[0]
    head, _, body = sent.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body.startswith(b"3\r\nabc\r\n0\r\n")
    trailers = body[body.index(b"0\r\n") + 3:]
    assert b"X-Digest: sha-256=xyz\r\n" in trailers
    assert b"Keep-Alive" not in trailers and b"X-Private" not in trailers
