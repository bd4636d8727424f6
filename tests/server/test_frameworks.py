"""Quart and Litestar apps under ``onehop serve`` (issue 13: their WebSocket endpoints got
404/400/405 before the ``websocket`` scope existed): lifespan start-up and shutdown, JSON,
a request body, a streamed response, a WebSocket echo, and a client that leaves a
WebSocket, each through a real socket with httpx, http.client and the websockets client.
FastAPI and Starlette are covered in ``test_websocket.py`` and the server tests."""

from __future__ import annotations

import asyncio
import http.client
from typing import Any

import httpx
import pytest
import websockets
from litestar import Litestar, Request, WebSocket, get, post, websocket
from litestar.response import Stream
from quart import Quart, request
from quart import websocket as quart_websocket

from tests.helpers import wait_for
from tests.server.helpers import running

pytestmark = pytest.mark.timeout(30)


async def echo_until_gone(receive: Any, send: Any, prefix: str, events: list[str]) -> None:
    """Echo each text message with *prefix* until the client leaves (the framework's
    receive raises); note the end in *events*."""
    try:
        while True:
            await send(f"{prefix}: {await receive()}")
    finally:
        events.append("websocket over")


def quart_app(events: list[str]) -> Quart:
    app = Quart(__name__)

    @app.before_serving
    async def startup() -> None:
        events.append("startup")

    @app.after_serving
    async def shutdown() -> None:
        events.append("shutdown")

    @app.get("/json")
    async def json_view() -> Any:
        return {"framework": "quart", "query": request.args.get("q", "")}

    @app.post("/echo")
    async def echo_view() -> Any:
        body = await request.get_data()
        return {"length": len(body), "head": body[:5].decode()}

    @app.get("/stream")
    async def stream_view() -> Any:
        async def chunks() -> Any:
            for i in range(3):
                yield f"part {i}\n".encode()
        return chunks(), 200, {"Content-Type": "text/plain"}

    @app.websocket("/ws")
    async def ws_view() -> None:
        await echo_until_gone(quart_websocket.receive, quart_websocket.send, "quart", events)

    return app


def litestar_app(events: list[str]) -> Litestar:
    @get("/json")
    async def json_view(request: Request[Any, Any, Any]) -> dict[str, str]:
        return {"framework": "litestar", "query": request.query_params.get("q", "")}

    @post("/echo")
    async def echo_view(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await request.body()
        return {"length": len(body), "head": body[:5].decode()}

    @get("/stream")
    async def stream_view() -> Stream:
        async def chunks() -> Any:
            for i in range(3):
                yield f"part {i}\n"
        return Stream(chunks(), media_type="text/plain")

    @websocket("/ws")
    async def ws_view(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        await echo_until_gone(socket.receive_text, socket.send_text, "litestar", events)

    async def startup() -> None:
        events.append("startup")

    async def shutdown() -> None:
        events.append("shutdown")

    return Litestar([json_view, echo_view, stream_view, ws_view], on_startup=[startup],
                    on_shutdown=[shutdown])


FRAMEWORKS = {"quart": quart_app, "litestar": litestar_app}


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_framework_http_and_lifespan(name: str) -> None:
    events: list[str] = []
    with running(FRAMEWORKS[name](events), lifespan="on") as server:
        assert events == ["startup"]
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base) as client:
            got = client.get("/json", params={"q": "x y"})
            assert got.status_code == 200
            assert got.json() == {"framework": name, "query": "x y"}
            body = b"hello" + b"." * 200_000
            posted = client.post("/echo", content=body)
            assert posted.json() == {"length": len(body), "head": "hello"}
            streamed = client.get("/stream")
            assert streamed.text == "part 0\npart 1\npart 2\n"
            # (A streamed body of unknown length goes chunked to an HTTP/1.1 client.)
            assert streamed.headers.get("transfer-encoding") == "chunked"
        # An HTTP/1.0 client gets the stream without chunked framing (RFC 9112 §9.3).
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"  # type: ignore[attr-defined]
        conn.request("GET", "/stream")
        old = conn.getresponse()
        assert old.getheader("transfer-encoding") is None
        assert old.read() == b"part 0\npart 1\npart 2\n"
        conn.close()
    assert events == ["startup", "shutdown"]


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_framework_websocket_echo_rfc6455(name: str) -> None:
    async def client(port: int) -> list[str]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            got = []
            for text in ("one", "two" * 10_000):
                await ws.send(text)
                got.append(str(await ws.recv()))
            return got

    events: list[str] = []
    with running(FRAMEWORKS[name](events)) as server:
        got = asyncio.run(client(server.port))
        assert got == [f"{name}: one", f"{name}: " + "two" * 10_000]
        # The client left: the app's endpoint ends (its receive learns of the disconnect)
        # and the connection is gone.
        assert wait_for(lambda: events == ["websocket over"])
        assert wait_for(lambda: not server.state.connections)
