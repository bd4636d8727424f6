"""WebSocket over HTTP/2 on ``onehop serve`` (RFC 8441: extended CONNECT), with each engine.

The client is :class:`tests.h2ws.H2WebSocket` (the probe's raw ``h2`` client for the
stream, ``websockets``' sans-I/O protocol for the frames), checked against hypercorn
as a second server; headless Chromium over TLS is the real browser. The apps are
those of the HTTP/1.1 WebSocket tests, so both handshakes run the same cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from onehop.probe.h2wire import H2Wire
from tests import browser
from tests.browser import needs_chromium
from tests.h2ws import H2WebSocket, announces_extended_connect
from tests.helpers import free_port, wait_for
from tests.probe.peers import running as running_cmd
from tests.server.certs import Certs, make_certs
from tests.server.helpers import running
from tests.server.test_websocket import FirstEvent, echo, page_and_echo

pytestmark = pytest.mark.timeout(60)

ENGINES = ["websockets", "wsproto"]
#: What RFC 9113 §8.2.2 calls connection-specific, and what RFC 8441 §5 leaves out.
CONNECTION_SPECIFIC = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                       "upgrade", "te"}
HANDSHAKE_ONLY_IN_HTTP1 = {"sec-websocket-accept"}
PROTOCOL_ERROR = 1
INTERNAL_ERROR = 2


class Recording:
    """Runs *app*, keeping each WebSocket scope it was given (the server runs in a thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            self.scopes.append(scope)
        await self.app(scope, receive, send)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _open(server: Any, wire: H2Wire, path: str = "/echo", **kwargs: Any) -> H2WebSocket:
    return H2WebSocket(wire, path, f"127.0.0.1:{server.port}", **kwargs)


# --- the setting and the handshake ----------------------------------------------------------


def test_settings_announce_extended_connect_only_with_websockets_on_rfc8441_3() -> None:
    with running(echo) as server, H2Wire("127.0.0.1", server.port) as wire:
        assert announces_extended_connect(wire)
    with running(echo, ws="none") as server, H2Wire("127.0.0.1", server.port) as wire:
        wire.get("/", "a")  # (the SETTINGS have come by now)
        assert not announces_extended_connect(wire)


def test_echo_over_a_stream_with_the_scope_of_an_http2_websocket_rfc8441_5(engine: str) -> None:
    app = Recording(echo)
    with running(app, ws=engine) as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, "/echo?x=1")
        ws.send("hello")
        text = ws.recv()
        ws.send(b"\x00\xff" * 50_000)  # 100 KB: more than the stream's first window
        data = ws.recv()
        plain = wire.get("/plain", "a")  # the connection serves other streams meanwhile
        ws.close(1000)
        wire.wait(ws.sid)
    assert ws.status == 200
    assert (text, len(data or b"")) == ("hello", 100_000)
    assert (ws.response.get("sec-websocket-extensions") or "").startswith("permessage-deflate")
    assert plain.status == 200 and plain.body == b"plain http"
    assert ws.close_code == 1000 and ws.response.ended  # END_STREAM after the close (§4)
    scope = app.scopes[0]
    assert (scope["http_version"], scope["scheme"], scope["path"]) == ("2", "ws", "/echo")
    assert scope["query_string"] == b"x=1"
    names = {name for name, _ in scope["headers"]}
    assert b"host" in names and b"sec-websocket-version" in names
    assert not names & {b"upgrade", b"connection", b"sec-websocket-key"}


def test_the_200_carries_nothing_connection_specific_and_keeps_the_stream_open_rfc8441_5(
        ) -> None:
    with running(echo) as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, "/proto", subprotocols=["a", "b"])
        ws.send("still open")
        assert ws.recv() == "still open"
        ws.close()
    names = set(ws.response.names())
    assert ws.status == 200
    assert not names & (CONNECTION_SPECIFIC | HANDSHAKE_ONLY_IN_HTTP1), names
    assert all(n == n.lower() for n in names)  # RFC 9113 §8.2.1


def test_subprotocol_chosen_by_the_app_rfc8441_5_rfc6455_1_9(engine: str) -> None:
    with running(echo, ws=engine) as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, "/proto", subprotocols=["a", "b"])
        ws.close()
    assert ws.subprotocol == "b" and ws.response.get("sec-websocket-protocol") == "b"


def test_deflate_off_sends_no_extensions_rfc7692() -> None:
    with running(echo, ws_per_message_deflate=False) as server, \
            H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire)
        ws.send("x")
        assert ws.recv() == "x"
    assert ws.response.get("sec-websocket-extensions") is None


def test_app_closing_before_accepting_is_403_on_the_stream_asgi() -> None:
    with running(echo) as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, "/deny")
        wire.wait(ws.sid)
        again = _open(server, wire)  # the connection goes on
        again.close()
    assert ws.status == 403 and ws.response.ended
    assert again.status == 200


def test_denial_response_extension_answers_on_the_stream_asgi() -> None:
    with running(echo) as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, "/http")
        response = wire.wait(ws.sid)
    assert ws.status == 418 and response.body == b"teapot"
    assert not set(response.names()) & CONNECTION_SPECIFIC


@pytest.mark.parametrize(("change", "status"), [
    ({"version": b"8"}, 426),
    ({"protocol": b"webtransport"}, 501),
], ids=["version-8", "other-protocol"])
def test_refused_handshakes_rfc8441_4_rfc6455_4_4(change: dict[str, bytes], status: int) -> None:
    with running(echo) as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, **change)
        response = wire.wait(ws.sid)
        good = wire.get("/g", "a")
    assert ws.status == status
    if status == 426:
        assert response.get("sec-websocket-version") == "13"  # RFC 6455 §4.4
    assert good.status == 200


@pytest.mark.parametrize(("fields", "why"), [
    ([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
      (b":authority", b"a")], "no :path"),
    ([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":path", b"/"),
      (b":authority", b"a")], "no :scheme"),
    ([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
      (b":path", b"/")], "no :authority"),
    ([(b":method", b"GET"), (b":protocol", b"websocket"), (b":scheme", b"http"),
      (b":path", b"/"), (b":authority", b"a")], "not CONNECT"),
])
def test_extended_connect_without_its_pseudo_headers_is_malformed_rfc8441_4(
        fields: list[tuple[bytes, bytes]], why: str) -> None:
    app = Recording(echo)
    with running(app) as server, H2Wire("127.0.0.1", server.port) as wire:
        bad = wire.wait(wire.send_headers([*fields, (b"sec-websocket-version", b"13")],
                                          end=False))
    assert bad.status == 400, why
    assert app.scopes == []


def test_protocol_without_the_setting_is_a_stream_error_rfc8441_3() -> None:
    with running(echo, ws="none") as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire)
        good = wire.get("/g", "a")
    assert ws.response.reset == PROTOCOL_ERROR and ws.status is None
    assert good.status == 200


# --- after the handshake: the same engine, limits and close codes as over HTTP/1.1 ----------


def test_close_codes_both_ways_rfc6455_7_4(engine: str) -> None:
    recorder = FirstEvent()
    seen = recorder.seen

    with running(recorder, ws=engine) as server, H2Wire("127.0.0.1", server.port) as wire:
        _open(server, wire).close(1001, "leaving")
        assert wait_for(lambda: bool(seen), 5)
    assert seen[0] == {"type": "websocket.disconnect", "code": 1001, "reason": "leaving"}
    with running(echo, ws=engine) as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, "/close4000")
        ws.send("x")
        assert ws.recv() is None
        wire.wait(ws.sid)
    assert (ws.close_code, ws.close_reason) == (4000, "bye")
    # An orderly END_STREAM; a RST_STREAM NO_ERROR may follow if the client kept its half
    # open (RFC 9113 §8.1): the closing handshake is over, nothing it sends is wanted.
    assert ws.response.ended and ws.response.reset in (None, 0)


def test_pings_are_sent_and_answered_pongs_keep_it_open_rfc6455_5_5_2(engine: str) -> None:
    with running(echo, ws=engine, ws_ping_interval=0.2, ws_ping_timeout=0.5) as server, \
            H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire)
        with contextlib.suppress(TimeoutError):
            ws.recv(timeout=1.2)  # (pings come and are answered; no message)
        ws.send("alive")
        assert ws.recv() == "alive"
        ws.ping(b"client")  # the server answers our ping too
        with contextlib.suppress(TimeoutError):
            ws.recv(timeout=0.3)
    assert ws.pings >= 3
    assert ws.close_code is None


def test_unanswered_ping_closes_with_1011_rfc6455_5_5_2(engine: str) -> None:
    with running(echo, ws=engine, ws_ping_interval=0.3, ws_ping_timeout=0.3) as server, \
            H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire)
        ws.answer_pings = False
        t0 = time.monotonic()
        assert ws.recv(timeout=5) is None
        wire.wait(ws.sid)
    assert ws.close_code == 1011  # the close frame went out before the stream's reset
    assert ws.response.reset == INTERNAL_ERROR
    assert 0.5 <= time.monotonic() - t0 < 3


def test_message_over_max_size_closes_with_1009_rfc6455_7_4_1(engine: str) -> None:
    with running(echo, ws=engine, ws_max_size=1000, ws_per_message_deflate=False) as server, \
            H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, deflate=False)
        ws.send(b"x" * 5000)
        assert ws.recv() is None
    assert ws.close_code == 1009


def test_graceful_shutdown_closes_with_1012_and_goaway_rfc6455_7_4_1_rfc9113_6_8() -> None:
    with running(echo) as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire)
        ws.send("x")
        assert ws.recv() == "x"
        server.stop()
        assert ws.recv(timeout=5) is None
        wire.settle(0.5)
    assert ws.close_code == 1012
    assert wire.goaway is not None and wire.goaway[0] >= ws.sid  # the stream was let finish


def test_app_that_does_not_read_closes_the_streams_window_backpressure() -> None:
    """16 queued messages and the server stops taking DATA: the stream's flow-control
    window shuts (RFC 9113 §5.2) instead of the server queueing without bound."""
    async def sleeper(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(3)  # (longer than the test; the shutdown waits for it)

    frame = b"\x82\xfe\xea\x60\x00\x00\x00\x00" + b"z" * 60000  # masked, zero mask
    with running(sleeper, ws_per_message_deflate=False) as server, \
            H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, deflate=False)
        sent = 0
        while sent < 12 * 1024 * 1024:
            if wire.conn.local_flow_control_window(ws.sid) < 16384:
                wire.settle(0.3)  # (a WINDOW_UPDATE would come now if the app read)
                if wire.conn.local_flow_control_window(ws.sid) < 16384:
                    break
            chunk = frame[sent % len(frame):][:16384]
            wire.conn.send_data(ws.sid, chunk)
            wire._flush()
            sent += len(chunk)
    assert 16 * len(frame) < sent < 2 * 1024 * 1024, sent


def test_a_message_sent_before_the_200_waits_for_the_switch_rfc8441_4() -> None:
    async def slow_echo(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.3)  # (the early message is on its way meanwhile)
        await echo(scope, receive, send)

    with running(slow_echo) as server, H2Wire("127.0.0.1", server.port) as wire:
        ws = _open(server, wire, deflate=False, early="sent early")
        assert ws.recv() == "sent early"
        ws.close()
    assert ws.status == 200


def test_two_websockets_and_requests_share_one_connection_rfc9113_5() -> None:
    with running(echo) as server, H2Wire("127.0.0.1", server.port) as wire:
        one, two = _open(server, wire), _open(server, wire)
        two.send("second")
        one.send("first")
        got = (one.recv(), two.recv(), wire.get("/p", "a").status)
        one.close()
        two.send("still here")
        assert two.recv() == "still here"
    assert got == ("first", "second", 200)


# --- another server, and a browser --------------------------------------------------------


def echo_app_source(prefix: str) -> str:
    """An ASGI module for a server run as a command: echoes text with *prefix*."""
    return f"""
async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    await send({{"type": "websocket.accept"}})
    while (m := await receive())["type"] != "websocket.disconnect":
        await send({{"type": "websocket.send", "text": {prefix!r} + m["text"]}})
"""


def test_the_test_client_speaks_rfc8441_with_hypercorn_too(tmp_path: Path) -> None:
    """The client's handshake and framing are checked against another implementation."""
    (tmp_path / "hcapp.py").write_text(echo_app_source("hypercorn:"))
    port = free_port()
    cmd = [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "hcapp:app"]
    with running_cmd(cmd, port, cwd=tmp_path), H2Wire("127.0.0.1", port) as wire:
        assert announces_extended_connect(wire)
        ws = H2WebSocket(wire, "/", f"127.0.0.1:{port}")
        ws.send("hi")
        assert ws.recv() == "hypercorn:hi"
        ws.close()
    assert ws.close_code == 1000


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@needs_chromium
def test_chromium_opens_a_websocket_over_http2_on_tls_rfc8441(certs: Certs) -> None:
    app = Recording(page_and_echo)
    with running(app, ssl_certfile=certs.cert, ssl_keyfile=certs.key) as server:
        verdict = browser.run(f"https://localhost:{server.port}/", "window.verdict",
                              extra_flags=["--ignore-certificate-errors"])
    assert verdict == "echo:from chromium"
    assert [(s["http_version"], s["scheme"]) for s in app.scopes] == [("2", "wss")]
