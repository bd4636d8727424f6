"""HTTP/2 clients through ``onehop proxy`` to HTTP/1.1 upstreams (RFC 9113, RFC 9110 §7.6).

The proxy takes HTTP/2 by prior knowledge on its cleartext port and forwards over
HTTP/1.1 through its pool; whatever is connection-specific on either side stays
there (RFC 9113 §8.2.2). The raw HTTP/2 client sees every field on the wire; the
raw upstreams see every byte the proxy sends.
"""

from __future__ import annotations

import gc
import json
import shutil
import socket
import subprocess
import threading
import time

import pytest

from onehop._aio.tls import TLSSettings
from onehop.probe.h2wire import H2Wire
from onehop.proxy import ProxyConfig
from onehop.proxy.forward import ForwardPolicy
from tests import browser
from tests.browser import needs_chromium
from tests.helpers import wait_for
from tests.proxy.helpers import ProxyThread, RawUpstream, free_port, read_head
from tests.server.apps import RESOURCES, leaky_site
from tests.server.certs import Certs, make_certs
from tests.server.helpers import running

pytestmark = pytest.mark.timeout(60)

CURL = shutil.which("curl") or "/usr/bin/curl"
H2LOAD = shutil.which("h2load")
CONNECTION_SPECIFIC = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                       "upgrade", "te"}
PROTOCOL_ERROR = 1


def _read_request(sock: socket.socket) -> tuple[bytes, bytes]:
    """One request from *sock*: its head and its body, de-chunked or by Content-Length."""
    buf = read_head(sock)
    head, _, rest = buf.partition(b"\r\n\r\n")
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while not rest.endswith(b"0\r\n\r\n") and b"\r\n0\r\n" not in rest[-64:]:
            rest += sock.recv(65536)
        return head, rest
    length = 0
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, rest


class LeakyUpstream:
    """An HTTP/1.1 origin whose answers carry every connection-specific field, a nominated
    one, a chunked body and trailers; it records each request it read."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, bytes]] = []
        self.upstream = RawUpstream(self._serve)

    def _serve(self, sock: socket.socket, index: int) -> None:
        while True:
            head, body = _read_request(sock)
            if not head:
                return
            self.requests.append((head, body))
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\n"
                b"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-End: kept\r\n"
                b"Trailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\nX-Hop: t\r\n\r\n")

    def __enter__(self) -> LeakyUpstream:
        self.upstream.__enter__()
        self.port = self.upstream.port
        return self

    def __exit__(self, *exc: object) -> None:
        self.upstream.__exit__(*exc)


def _proxy(upstream: int, **kwargs: object) -> ProxyThread:
    return ProxyThread(upstreams=[f"http://127.0.0.1:{upstream}"], **kwargs)


def test_leaky_upstream_answer_reaches_the_http2_client_with_nothing_connection_specific_rfc9113_8_2_2(  # noqa: E501
        pool_state: str) -> None:
    with LeakyUpstream() as up, _proxy(up.port) as p, H2Wire("127.0.0.1", p.port) as wire:
        response = wire.get("/x", "app.test", fields=[("te", "trailers")])
    assert response.status == 200
    assert response.body == b"hello world"
    names = set(response.names())
    assert not names & (CONNECTION_SPECIFIC | {"x-hop"}), names
    assert response.get("x-end") == "kept"
    assert response.get("via") == "1.1 onehop"
    # The upstream's trailer goes on as HTTP/2 trailers; the one it nominated does not.
    assert response.trailers == [(b"x-checksum", b"42")]


def test_curl_http2_through_the_proxy_sees_no_connection_specific_field() -> None:
    with LeakyUpstream() as up, _proxy(up.port) as p:
        out = subprocess.run([CURL, "-sS", "-D-", "--http2-prior-knowledge",
                              f"http://127.0.0.1:{p.port}/c"], capture_output=True, timeout=10)
    head, _, rest = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200"), out
    assert rest.startswith(b"hello world")
    trailers = rest[len(b"hello world"):]  # (curl -D- prints the trailer section last)
    lines = (head + b"\r\n" + trailers).split(b"\r\n")[1:]
    names = {line.split(b":")[0].decode().lower() for line in lines if line}
    assert not names & (CONNECTION_SPECIFIC | {"x-hop"}), names
    assert "x-checksum" in names


def test_request_goes_up_as_http11_with_authority_as_host_and_via_2_rfc9113_8_3_1() -> None:
    with LeakyUpstream() as up, _proxy(up.port) as p, H2Wire("127.0.0.1", p.port) as wire:
        wire.get("/path?q=1", "app.test:8443", fields=[("cookie", "a=1"), ("cookie", "b=2"),
                                                       ("te", "trailers")])
    head = up.requests[0][0].decode()
    lines = head.split("\r\n")
    assert lines[0] == "GET /path?q=1 HTTP/1.1"
    assert "Host: app.test:8443" in lines or "host: app.test:8443" in lines
    assert "cookie: a=1; b=2" in lines
    assert "Via: 2 onehop" in lines  # RFC 9110 §7.6.3: the protocol received
    assert "TE: trailers" in lines and "Connection: te" in lines  # (RFC 9110 §10.1.4)
    assert "transfer-encoding" not in head.lower()  # END_STREAM on HEADERS: no content


def test_request_body_without_length_goes_up_chunked_rfc9112_7_1(pool_state: str) -> None:
    with LeakyUpstream() as up, _proxy(up.port) as p, H2Wire("127.0.0.1", p.port) as wire:
        body = b"z" * 200_000
        response = wire.get("/up", "app.test", method="POST", body=body)
        sized = wire.get("/sized", "app.test", method="POST", body=b"abc",
                         fields=[("content-length", "3")])
    assert response.status == sized.status == 200
    head, chunked = up.requests[0]
    assert b"Transfer-Encoding: chunked" in head
    assert b"content-length" not in head.lower()
    decoded, rest = b"", chunked
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        decoded, rest = decoded + rest[:size], rest[size + 2:]
    assert decoded == body
    head, plain = up.requests[1]
    assert b"content-length: 3" in head.lower() and b"transfer-encoding" not in head.lower()
    assert plain == b"abc"


def test_get_ended_by_an_empty_data_frame_goes_up_without_content() -> None:
    with LeakyUpstream() as up, _proxy(up.port) as p, H2Wire("127.0.0.1", p.port) as wire:
        # (HEADERS and the empty DATA frame in one write, as clients that do this send them)
        sid = wire.send_headers([(b":method", b"GET"), (b":scheme", b"http"),
                                 (b":path", b"/e"), (b":authority", b"a")], end=False,
                                flush=False)
        wire.send_data(sid, b"")
        assert wire.wait(sid).status == 200
    assert b"transfer-encoding" not in up.requests[0][0].lower()


@pytest.mark.parametrize(("name", "value"), [
    ("connection", "close"), ("keep-alive", "1"), ("transfer-encoding", "chunked"),
    ("upgrade", "websocket"), ("proxy-connection", "keep-alive"), ("te", "deflate"),
])
def test_request_with_connection_specific_field_is_reset_and_never_forwarded_rfc9113_8_2_2(
        name: str, value: str) -> None:
    with LeakyUpstream() as up, _proxy(up.port) as p, H2Wire("127.0.0.1", p.port) as wire:
        bad = wire.get("/bad", "a", fields=[(name, value)])
        good = wire.get("/good", "a")
    assert bad.reset == PROTOCOL_ERROR and bad.status is None
    assert good.status == 200
    assert [r[0].split(b" ")[1] for r in up.requests] == [b"/good"]


def test_request_trailers_go_up_in_the_chunked_body_rfc9110_6_5() -> None:
    with LeakyUpstream() as up, _proxy(up.port) as p, H2Wire("127.0.0.1", p.port) as wire:
        sid = wire.send_headers([(b":method", b"POST"), (b":scheme", b"http"),
                                 (b":path", b"/t"), (b":authority", b"a"),
                                 (b"te", b"trailers")], end=False)
        wire.send_data(sid, b"data", end=False)
        wire.conn.send_headers(sid, [(b"x-sum", b"7")], end_stream=True)
        wire._flush()
        assert wire.wait(sid).status == 200
    assert up.requests[0][1].endswith(b"0\r\nx-sum: 7\r\n\r\n")


def test_upstream_refusing_is_a_502_on_the_stream() -> None:
    with _proxy(free_port()) as p, H2Wire("127.0.0.1", p.port) as wire:
        response = wire.get("/", "a")
        again = wire.get("/", "a")
    assert response.status == again.status == 502
    assert not set(response.names()) & CONNECTION_SPECIFIC


def test_early_hints_are_relayed_as_an_http2_interim_response_rfc9110_15_2() -> None:
    def hints(sock: socket.socket, index: int) -> None:
        read_head(sock)
        sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    with RawUpstream(hints) as up, _proxy(up.port) as p, H2Wire("127.0.0.1", p.port) as wire:
        response = wire.get("/", "a")
    assert response.status == 200 and response.body == b"ok"
    assert [dict(i).get(b":status") for i in response.informational] == [b"103"]
    assert (b"link", b"</s.css>; rel=preload") in response.informational[0]


def test_connect_over_an_http2_stream_tunnels_to_the_target_rfc9113_8_5() -> None:
    def echo(sock: socket.socket, index: int) -> None:
        while data := sock.recv(65536):
            sock.sendall(b"echo:" + data)
        sock.shutdown(socket.SHUT_WR)

    with RawUpstream(echo) as up:
        cfg = ProxyConfig(forward=ForwardPolicy(allow=[f"127.0.0.1:{up.port}"],
                                                connect_ports=None))
        with ProxyThread(cfg) as p, H2Wire("127.0.0.1", p.port) as wire:
            sid = wire.send_headers([(b":method", b"CONNECT"),
                                     (b":authority", f"127.0.0.1:{up.port}".encode())],
                                    end=False)
            wire.settle(0.3)
            assert wire.responses[sid].status == 200
            wire.send_data(sid, b"ping")
            response = wire.wait(sid)
    assert response.body == b"echo:ping"
    assert response.ended


@pytest.mark.skipif(H2LOAD is None, reason="h2load not installed")
def test_h2load_streams_through_the_proxy_all_answered() -> None:
    with LeakyUpstream() as up, _proxy(up.port) as p:
        out = subprocess.run([H2LOAD, "-n", "600", "-c", "3", "-m", "10",
                              f"http://127.0.0.1:{p.port}/"], capture_output=True, timeout=30,
                             text=True)
    assert "600 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout


def test_proxy_graceful_shutdown_sends_goaway_and_finishes_the_stream_rfc9113_6_8() -> None:
    release = threading.Event()

    def slow(sock: socket.socket, index: int) -> None:
        read_head(sock)
        release.wait(5)
        time.sleep(0.3)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")

    with RawUpstream(slow) as up:
        p = _proxy(up.port)
        p.__enter__()
        wire = H2Wire("127.0.0.1", p.port)
        sid = wire.request("GET", "/slow", "a")
        time.sleep(0.2)
        release.set()
        p.__exit__(None, None, None)  # graceful: the stream in flight finishes
        response = wire.wait(sid)
        wire.close()
    assert response.status == 200 and response.body == b"done"
    assert wire.goaway is not None and wire.goaway[1] == 0


def test_proxy_config_http2_keys_and_flags() -> None:
    from onehop.proxy.config import ConfigError, from_dict

    cfg = from_dict({"upstreams": {"default": ["http://127.0.0.1:1"]}, "http": "h11",
                     "http2": {"max_concurrent_streams": 8, "initial_window_size": 1 << 20}})
    assert cfg.http == "h11" and cfg.http2.max_concurrent_streams == 8
    assert cfg.serving_config().http2.initial_window_size == 1 << 20
    with pytest.raises(ConfigError, match=r"http2\.max_concurrent_streams"):
        from_dict({"upstreams": {"default": ["http://127.0.0.1:1"]},
                   "http2": {"max_concurrent_streams": 0}})
    with pytest.raises(ConfigError, match=r"http2\.window"):
        from_dict({"upstreams": {"default": ["http://127.0.0.1:1"]}, "http2": {"window": 1}})
    with pytest.raises(ConfigError, match="http: expected one of"):
        from_dict({"upstreams": {"default": ["http://127.0.0.1:1"]}, "http": "spdy"})


# --- TLS: the proxy offers h2 by ALPN (RFC 9113 §3.2) --------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _tls_proxy(certs: Certs, upstream: int) -> ProxyThread:
    cfg = ProxyConfig(upstreams={"default": [f"http://127.0.0.1:{upstream}"]},
                      tls=TLSSettings(certfile=certs.cert, keyfile=certs.key))
    return ProxyThread(cfg)


def test_tls_proxy_answers_h2_by_alpn_with_nothing_connection_specific(certs: Certs) -> None:
    with LeakyUpstream() as up, _tls_proxy(certs, up.port) as p:
        with H2Wire("127.0.0.1", p.port, tls=True, server_name="localhost") as wire:
            response = wire.get("/tls", "localhost", scheme="https")
        out = subprocess.run([CURL, "-sS", "-v", "-o", "/dev/null", "--cacert", certs.ca,
                              f"https://localhost:{p.port}/c"], capture_output=True, text=True,
                             timeout=20)
    assert response.status == 200 and response.body == b"hello world"
    assert not set(response.names()) & (CONNECTION_SPECIFIC | {"x-hop"})
    assert "ALPN: server accepted h2" in out.stderr
    assert b"X-Forwarded-Proto: https" in up.requests[0][0]


@needs_chromium
def test_chromium_loads_a_page_of_many_resources_through_the_proxy_over_h2(
        certs: Certs) -> None:
    with running(leaky_site, access_log=False) as origin, _tls_proxy(certs, origin.port) as p:
        verdict = browser.run(f"https://localhost:{p.port}/", "window.verdict", timeout=30,
                              extra_flags=["--ignore-certificate-errors"])
    assert verdict is not None, "the page did not finish loading"
    seen = json.loads(verdict)
    assert seen == {"ok": RESOURCES, "nav": "h2", "protocols": ["h2"]}, seen


def _inbounds_with_a_pending_timer() -> int:
    """How many proxy handlers are alive with their timer pending, found by the garbage
    collector (a compiled ``Inbound`` cannot be wrapped to record its instances)."""
    from onehop.proxy.inbound import Inbound

    return sum(1 for o in gc.get_objects() if type(o) is Inbound and o.timer.pending)


def test_each_stream_and_connection_releases_its_timer_when_over() -> None:
    """A handler's lazily re-armed timer keeps it (and its last exchange) alive until the
    handle fires, up to ``timeouts.read``: the endpoint tells the handler when its
    connection, or HTTP/2 stream, is over, and the timer is cancelled (found with h2load:
    about 6 KiB per request held for 60 s, and per connection for HTTP/1.1 ``close``)."""
    with LeakyUpstream() as up, _proxy(up.port) as p:
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as idle:
            # (The control: an open keep-alive connection's handler is found, timer armed.)
            idle.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200")
            assert wait_for(lambda: _inbounds_with_a_pending_timer() == 1)
        with H2Wire("127.0.0.1", p.port) as wire:
            for i in range(5):
                assert wire.get(f"/{i}", "a").status == 200
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", p.port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                while sock.recv(65536):
                    pass
        assert wait_for(lambda: _inbounds_with_a_pending_timer() == 0)
