"""HTTP/2 clients' WebSockets through ``onehop proxy`` to HTTP/1.1 origins (RFC 8441, RFC 6455
§4, RFC 9110 §7.8).

The proxy announces SETTINGS_ENABLE_CONNECT_PROTOCOL, takes the extended CONNECT on
a stream, sends the origin the HTTP/1.1 upgrade it replaces (a key of its own, the
client's end-to-end fields, ``Via``, hooks, the pool), checks the 101's accept and
answers 200 on the stream; then the stream's DATA and the upstream connection are
one tunnel. The client is :class:`tests.h2ws.H2WebSocket`; the origins are onehop,
uvicorn and raw sockets that show what arrived, and Chromium is the browser.
"""

from __future__ import annotations

import base64
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from onehop._aio.tls import TLSSettings
from onehop.core import Request
from onehop.core.wskey import accept_key
from onehop.probe.h2wire import H2Wire
from onehop.proxy import ProxyConfig
from tests import browser
from tests.browser import needs_chromium
from tests.h2ws import H2WebSocket, announces_extended_connect
from tests.helpers import free_port
from tests.probe.peers import running as running_cmd
from tests.proxy.helpers import ProxyThread, RawUpstream, read_head
from tests.server.certs import Certs, make_certs
from tests.server.helpers import running
from tests.server.test_websocket import echo, page_and_echo
from tests.server.test_websocket_h2 import CONNECTION_SPECIFIC, Recording, echo_app_source

pytestmark = pytest.mark.timeout(60)


def _proxy(origin: int, **kwargs: Any) -> ProxyThread:
    return ProxyThread(upstreams=[f"http://127.0.0.1:{origin}"], **kwargs)


def _open(p: ProxyThread, wire: H2Wire, path: str = "/echo", **kwargs: Any) -> H2WebSocket:
    return H2WebSocket(wire, path, f"127.0.0.1:{p.port}", **kwargs)


def _head_fields(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines
                                                          if line)}


def test_the_proxy_announces_extended_connect_rfc8441_3() -> None:
    with _proxy(free_port()) as p, H2Wire("127.0.0.1", p.port) as wire:
        assert announces_extended_connect(wire)


def test_websocket_from_an_http2_client_to_an_http11_onehop_origin_rfc8441_5() -> None:
    app = Recording(echo)
    with running(app, http="h11") as origin, _proxy(origin.port) as p, \
            H2Wire("127.0.0.1", p.port) as wire:
        ws = _open(p, wire, "/proto", subprotocols=["a", "b"], deflate=False,
                   fields=[(b"origin", b"http://example.test")], early="early")
        assert ws.recv() == "early"  # (it waited for the tunnel)
        ws.send("hello")
        text = ws.recv()
        ws.send(b"\x00\xff" * 50_000)  # 100 KB: the stream's window and the tunnel's marks
        data = ws.recv()
        plain = wire.get("/plain", f"127.0.0.1:{p.port}")  # other streams go on meanwhile
        ws.close(1000)
        wire.wait(ws.sid)
    assert ws.status == 200 and ws.subprotocol == "b"
    assert (text, len(data or b"")) == ("hello", 100_000)
    assert plain.status == 200 and plain.body == b"plain http"
    assert ws.close_code == 1000 and ws.response.ended
    names = set(ws.response.names())
    assert not names & (CONNECTION_SPECIFIC | {"sec-websocket-accept"}), names
    assert ws.response.get("via") == "1.1 onehop"
    scope = app.scopes[0]  # the origin served an HTTP/1.1 upgrade
    assert scope["http_version"] == "1.1" and scope["subprotocols"] == ["a", "b"]
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    assert headers["via"] == "2 onehop" and headers["origin"] == "http://example.test"
    assert headers["upgrade"] == "websocket" and "upgrade" in headers["connection"].lower()


def test_websocket_from_an_http2_client_to_uvicorn_rfc8441_5(tmp_path: Path) -> None:
    (tmp_path / "wsapp.py").write_text(echo_app_source("uvicorn:"))
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "wsapp:app", "--port", str(port), "--host",
           "127.0.0.1", "--log-level", "warning", "--ws", "websockets"]
    with running_cmd(cmd, port, cwd=tmp_path), _proxy(port) as p, \
            H2Wire("127.0.0.1", p.port) as wire:
        ws = _open(p, wire, "/")
        ws.send("hi")
        got = ws.recv()
        ws.close()
    assert ws.status == 200 and got == "uvicorn:hi" and ws.close_code == 1000


class UpgradeOrigin:
    """A raw HTTP/1.1 origin: records the request head, answers with *answer* (given the
    request's fields), then echoes the raw bytes that follow."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        self.upstream = RawUpstream(self._serve)

    def _serve(self, sock: socket.socket, index: int) -> None:
        head = read_head(sock)
        self.heads.append(head)
        sock.sendall(self.answer(_head_fields(head)))
        while data := sock.recv(65536):
            sock.sendall(data)

    def __enter__(self) -> UpgradeOrigin:
        self.upstream.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.upstream.__exit__(*exc)


def _switch(fields: dict[str, str], accept: bytes | None = None) -> bytes:
    accept = accept or accept_key(fields["sec-websocket-key"].encode())
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: chat\r\n"
            b"X-Origin: yes\r\n\r\n")


def test_the_origin_gets_an_http11_upgrade_with_a_fresh_key_and_the_clients_fields_rfc6455_4_1(
        ) -> None:
    hooked: list[Request] = []

    def hook(inbound: Request, outbound: Request) -> None:
        hooked.append(outbound)

    with UpgradeOrigin(_switch) as origin, _proxy(origin.upstream.port, request_hook=hook) as p, \
            H2Wire("127.0.0.1", p.port) as wire:
        ws = _open(p, wire, "/chat?room=1", subprotocols=["chat"], deflate=False,
                   fields=[(b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
                           (b"te", b"trailers"), (b"x-end", b"kept")])
        wire.send_data(ws.sid, b"raw tunnel bytes", end=False)  # (the origin echoes bytes)
        wire.settle(0.3)
    head = origin.heads[0]
    assert head.startswith(b"GET /chat?room=1 HTTP/1.1\r\n")
    fields = _head_fields(head)
    assert fields["upgrade"] == "websocket" and fields["connection"].lower() == "upgrade"
    assert fields["sec-websocket-version"] == "13"
    assert fields["sec-websocket-protocol"] == "chat" and fields["x-end"] == "kept"
    key = fields["sec-websocket-key"]
    assert key != "dGhlIHNhbXBsZSBub25jZQ==" and len(base64.b64decode(key)) == 16
    assert fields["host"] == f"127.0.0.1:{p.port}" and fields["via"] == "2 onehop"
    assert "te" not in fields and "x-forwarded-for" in fields
    assert hooked and hooked[0].headers.get(b"sec-websocket-key") == key.encode()
    assert ws.status == 200
    assert ws.response.get("sec-websocket-protocol") == "chat"
    assert ws.response.get("x-origin") == "yes"
    assert ws.response.get("sec-websocket-accept") is None
    assert ws.response.body == b"raw tunnel bytes"  # both ways through the tunnel


def test_a_101_with_a_wrong_accept_is_a_502_on_the_stream_rfc6455_4_1() -> None:
    def wrong(fields: dict[str, str]) -> bytes:
        return _switch(fields, accept=accept_key(b"not the key we sent"))

    with UpgradeOrigin(wrong) as origin, _proxy(origin.upstream.port) as p, \
            H2Wire("127.0.0.1", p.port) as wire:
        ws = _open(p, wire)
        response = wire.wait(ws.sid)
        other = _open(p, wire)  # (the HTTP/2 connection goes on)
        wire.wait(other.sid)
    assert ws.status == 502 and b"Sec-WebSocket-Key" in response.body
    assert other.status == 502 and len(origin.heads) == 2


def test_an_origin_that_refuses_the_upgrade_is_relayed_as_a_response_rfc9110_7_8() -> None:
    def refuses(fields: dict[str, str]) -> bytes:
        return (b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: keep-alive\r\n"
                b"\r\nno socket")

    with UpgradeOrigin(refuses) as origin, _proxy(origin.upstream.port) as p, \
            H2Wire("127.0.0.1", p.port) as wire:
        ws = _open(p, wire)
        response = wire.wait(ws.sid)
    assert ws.status == 404 and response.body == b"no socket" and response.ended
    assert not set(response.names()) & CONNECTION_SPECIFIC


def test_another_protocol_is_501_and_never_reaches_the_origin_rfc8441_4() -> None:
    with UpgradeOrigin(_switch) as origin, _proxy(origin.upstream.port) as p, \
            H2Wire("127.0.0.1", p.port) as wire:
        ws = _open(p, wire, protocol=b"connect-udp")
        wire.wait(ws.sid)
    assert ws.status == 501 and origin.heads == []


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@needs_chromium
def test_chromium_over_h2_through_the_tls_proxy_to_an_http11_origin_rfc8441(
        certs: Certs) -> None:
    app = Recording(page_and_echo)
    with running(app) as origin:
        cfg = ProxyConfig(upstreams={"default": [f"http://127.0.0.1:{origin.port}"]},
                          tls=TLSSettings(certfile=certs.cert, keyfile=certs.key))
        with ProxyThread(cfg) as p:
            verdict = browser.run(f"https://localhost:{p.port}/", "window.verdict",
                                  extra_flags=["--ignore-certificate-errors"])
    assert verdict == "echo:from chromium"
    headers = {k.decode(): v.decode() for k, v in app.scopes[0]["headers"]}
    assert headers["via"] == "2 onehop"  # Chromium spoke HTTP/2 to the proxy
