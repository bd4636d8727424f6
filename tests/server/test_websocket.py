"""WebSocket on ``onehop serve`` (RFC 6455; RFC 9110 §7.8; the ASGI ``websocket`` scope),
with each engine (``websockets`` and ``wsproto``), against the ``websockets`` client
library, raw sockets where the client must misbehave, and FastAPI/Starlette apps."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from fastapi import FastAPI, WebSocket
from websockets.exceptions import ConnectionClosed

from onehop.server.asgi import ClientDisconnected
from tests import browser
from tests.browser import needs_chromium
from tests.helpers import wait_for
from tests.server.helpers import read_until_close, running

pytestmark = pytest.mark.timeout(30)

ENGINES = ["websockets", "wsproto"]


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Echoes text and bytes; ``/close4000`` closes with 4000 after the first message;
    ``/deny`` closes before accepting; ``/http`` answers 418 instead (denial extension);
    ``/proto`` accepts the second subprotocol offered."""
    if scope["type"] == "http":
        body = b"plain http"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/http":
        await send({"type": "websocket.http.response.start", "status": 418,
                    "headers": [(b"content-length", b"6")]})
        await send({"type": "websocket.http.response.body", "body": b"teapot"})
        return
    subprotocol = scope["subprotocols"][1] if path == "/proto" else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if path == "/close4000":
            await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
            return
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_echo_text_and_binary_rfc6455_5_6(engine: str) -> None:
    async def client(port: int) -> list[Any]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo") as ws:
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(b"\x00\xff" * 50_000)  # fragmented by the client, 100 KB
            data = await ws.recv()
            return [text, len(data), ws.response.headers.get("Sec-WebSocket-Extensions")]

    with running(echo, ws=engine) as server:
        text, size, extensions = _run(client(server.port))
    assert (text, size) == ("hello", 100_000)
    assert extensions is not None and extensions.startswith("permessage-deflate")


def test_per_message_deflate_off_when_asked_rfc7692(engine: str) -> None:
    async def client(port: int) -> str | None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("x")
            await ws.recv()
            return ws.response.headers.get("Sec-WebSocket-Extensions")

    with running(echo, ws=engine, ws_per_message_deflate=False) as server:
        assert _run(client(server.port)) is None


def _handshake(port: int, fields: list[tuple[str, str]], method: str = "GET",
               version: str = "HTTP/1.1") -> bytes:
    head = f"{method} /echo {version}\r\nHost: x\r\n" + "".join(
        f"{n}: {v}\r\n" for n, v in fields) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head.encode())
        s.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


KEY = base64.b64encode(os.urandom(16)).decode()
GOOD = [("Upgrade", "websocket"), ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13")]


def test_upgrade_token_anywhere_in_connection_any_case_rfc9110_7_6_1() -> None:
    with running(echo) as server:
        for conn in ("keep-alive, Upgrade", "UPGRADE", "upgrade, close"):
            fields = [(n, conn if n == "Connection" else v) for n, v in GOOD]
            data = _handshake(server.port, fields)
            assert data.startswith(b"HTTP/1.1 101 "), (conn, data)
            assert b"Sec-WebSocket-Accept: " in data


@pytest.mark.parametrize(("change", "status"), [
    (("Connection", "keep-alive"), 400),
    (("Sec-WebSocket-Version", "8"), 426),
    (("Sec-WebSocket-Key", "c2hvcnQ="), 400),
    (("Sec-WebSocket-Key", "not base64!!"), 400),
], ids=["no-upgrade-in-connection", "version-8", "short-key", "bad-key"])
def test_invalid_handshake_is_refused_rfc6455_4_2_1(change: tuple[str, str], status: int) -> None:
    fields = [(n, change[1] if n == change[0] else v) for n, v in GOOD]
    with running(echo) as server:
        data = _handshake(server.port, fields)
    assert data.startswith(b"HTTP/1.1 %d " % status), data
    if status == 426:
        assert b"\r\nSec-WebSocket-Version: 13\r\n" in data  # RFC 6455 §4.4


def test_post_handshake_is_refused_rfc6455_4_1() -> None:
    with running(echo) as server:
        assert _handshake(server.port, GOOD, method="POST").startswith(b"HTTP/1.1 400 ")


def test_close_before_accept_answers_403_asgi() -> None:
    with running(echo) as server:
        head = ("GET /deny HTTP/1.1\r\nHost: x\r\n" + "".join(
            f"{n}: {v}\r\n" for n, v in GOOD) + "\r\n").encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(head)
            data = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 403 ")


def test_denial_response_extension_sends_the_apps_answer_asgi() -> None:
    head = ("GET /http HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{n}: {v}\r\n" for n, v in GOOD) + "\r\n").encode()
    with running(echo) as server, socket.create_connection(("127.0.0.1", server.port),
                                                          timeout=5) as s:
        s.sendall(head)
        data = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 418 ") and data.endswith(b"teapot")


def test_subprotocol_chosen_by_the_app_rfc6455_1_9(engine: str) -> None:
    async def client(port: int) -> str | None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/proto",
                                      subprotocols=["a", "b"]) as ws:  # type: ignore[list-item]
            return ws.subprotocol

    with running(echo, ws=engine) as server:
        assert _run(client(server.port)) == "b"


class FirstEvent:
    """Accepts, then keeps the first event the app receives (``seen``); for close codes."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        self.seen.append(await receive())


def test_close_codes_both_ways_rfc6455_7_4(engine: str) -> None:
    recorder = FirstEvent()
    seen = recorder.seen

    async def closes_1001(port: int) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.close(1001, "leaving")

    async def app_closes(port: int) -> tuple[int | None, str | None]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/close4000") as ws:
            await ws.send("x")
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    with running(recorder, ws=engine) as server:
        _run(closes_1001(server.port))
        assert wait_for(lambda: bool(seen), 5)
    assert seen[0] == {"type": "websocket.disconnect", "code": 1001, "reason": "leaving"}
    with running(echo, ws=engine) as server:
        assert _run(app_closes(server.port)) == (4000, "bye")


def test_message_over_max_size_closes_with_1009_rfc6455_7_4_1(engine: str) -> None:
    async def client(port: int) -> int | None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
            await ws.send(b"x" * 5000)
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    with running(echo, ws=engine, ws_max_size=1000, ws_per_message_deflate=False) as server:
        assert _run(client(server.port)) == 1009


def _raw_ws(port: int, path: str = "/") -> socket.socket:
    """A raw socket after a completed handshake (no frame handling: it misbehaves)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = (f"GET {path} HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{n}: {v}\r\n" for n, v in GOOD) + "\r\n").encode()
    s.sendall(head)
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    assert data.startswith(b"HTTP/1.1 101 ")
    return s


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the unmasked server frames in *data*."""
    out = []
    while len(data) >= 2:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        pos = 2
        if length == 126:
            length = struct.unpack("!H", data[2:4])[0]
            pos = 4
        elif length == 127:
            length = struct.unpack("!Q", data[2:10])[0]
            pos = 10
        out.append((opcode, data[pos:pos + length]))
        data = data[pos + length:]
    return out


def test_unanswered_ping_closes_with_1011_after_the_timeout_rfc6455_5_5_2(engine: str) -> None:
    with running(echo, ws=engine, ws_ping_interval=0.3, ws_ping_timeout=0.3) as server:
        s = _raw_ws(server.port)
        t0 = time.monotonic()
        data = read_until_close(s, timeout=5)
        s.close()
    frames = _frames(data)
    assert frames[0][0] == 0x9  # a ping
    close = [p for op, p in frames if op == 0x8]
    assert close and struct.unpack("!H", close[0][:2])[0] == 1011
    assert 0.5 <= time.monotonic() - t0 < 3


def test_graceful_shutdown_closes_with_1012_rfc6455_7_4_1() -> None:
    async def client(port: int, stop: Callable[[], None]) -> int | None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("x")
            await ws.recv()
            stop()
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    with running(echo) as server:
        assert _run(client(server.port, server.stop)) == 1012


def test_send_after_the_client_left_raises_oserror_asgi_spec_2_4(engine: str) -> None:
    raised: list[BaseException] = []

    async def talker(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                await send({"type": "websocket.send", "text": "tick"})
                await asyncio.sleep(0.02)
        except OSError as exc:
            raised.append(exc)

    with running(talker, ws=engine) as server:
        s = _raw_ws(server.port)
        time.sleep(0.1)
        s.close()
        assert wait_for(lambda: bool(raised), 5)
    assert isinstance(raised[0], ClientDisconnected)


def test_app_that_does_not_read_stops_the_server_reading_backpressure() -> None:
    # 16 queued messages and the server stops reading: the client's writes then stall
    # (its socket buffers fill) instead of the server queueing without bound.
    async def sleeper(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(10)

    frame = b"\x82\xfe" + struct.pack("!H", 60000) + b"\x00\x00\x00\x00" + b"z" * 60000
    with running(sleeper, ws_per_message_deflate=False) as server:
        s = _raw_ws(server.port)
        s.settimeout(1.0)
        sent = 0
        with pytest.raises(TimeoutError):
            for _ in range(2000):  # 120 MB: far more than any buffer on the way
                s.sendall(frame)
                sent += len(frame)
        s.close()
    assert sent < 60 * 1024 * 1024


def test_ws_none_treats_upgrade_as_plain_http() -> None:
    with running(echo, ws="none") as server:
        data = _handshake(server.port, GOOD)
    assert data.startswith(b"HTTP/1.1 200 ")


def test_fastapi_websocket_endpoint() -> None:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        name = await websocket.receive_text()
        await websocket.send_json({"hello": name})
        await websocket.close()

    async def client(port: int) -> str:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send("onehop")
            return str(await ws.recv())

    with running(app) as server:
        assert _run(client(server.port)) == '{"hello":"onehop"}'



def test_websocket_through_onehop_proxy_to_onehop_serve_rfc9110_7_8(engine: str) -> None:
    from tests.proxy.helpers import ProxyThread

    async def client(port: int) -> list[str | bytes]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo") as ws:
            got = []
            for m in ("a", "b" * 100_000):
                await ws.send(m)
                got.append(await ws.recv())
            assert ws.response.headers.get("Via") == "1.1 onehop"
            return got

    with running(echo, ws=engine) as server, \
            ProxyThread(upstreams=[f"http://127.0.0.1:{server.port}"]) as p:
        assert _run(client(p.port)) == ["a", "b" * 100_000]


PAGE = b"""<!doctype html><title>ws</title><script>
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://")
                         + location.host + "/echo");
ws.onopen = () => ws.send("from chromium");
ws.onmessage = (e) => { window.verdict = "echo:" + e.data; ws.close(); };
ws.onerror = () => { window.verdict = "error"; };
</script>"""


async def page_and_echo(scope: Any, receive: Any, send: Any) -> None:
    """``/`` serves a page whose script opens a WebSocket to ``/echo`` (see ``echo``)."""
    if scope["type"] == "http" and scope["path"] == "/":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html"),
                                (b"content-length", b"%d" % len(PAGE))]})
        await send({"type": "http.response.body", "body": PAGE})
        return
    await echo(scope, receive, send)


@needs_chromium
def test_chromium_opens_a_websocket_to_onehop_serve_and_through_onehop_proxy() -> None:
    from tests.proxy.helpers import ProxyThread

    with running(page_and_echo) as server:
        assert browser.run(f"http://127.0.0.1:{server.port}/", "window.verdict") == (
            "echo:from chromium")
        with ProxyThread(upstreams=[f"http://127.0.0.1:{server.port}"]) as p:
            assert browser.run(f"http://127.0.0.1:{p.port}/", "window.verdict") == (
                "echo:from chromium")
