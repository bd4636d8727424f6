"""A client that leaves is told to the app (ASGI spec 2.4): ``receive`` returns
``http.disconnect`` and ``send`` raises an ``OSError`` subclass, so a streaming app (a
Starlette ``StreamingResponse``, server-sent events) stops instead of running forever."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from onehop.server.asgi import ClientDisconnected
from tests.helpers import wait_for
from tests.server.helpers import connect, running

pytestmark = pytest.mark.timeout(30)


def test_send_after_the_client_left_raises_an_oserror_asgi_spec_2_4() -> None:
    raised: list[BaseException] = []

    async def stream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
                await asyncio.sleep(0.05)
        except OSError as exc:
            raised.append(exc)
            raise

    with running(stream) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # a reset: the client is gone
        assert wait_for(lambda: bool(raised), 5)
    assert isinstance(raised[0], ClientDisconnected)


def test_receive_returns_http_disconnect_when_the_client_leaves_asgi_spec() -> None:
    got: list[dict[str, Any]] = []
    done = threading.Event()

    async def waits(scope: Any, receive: Any, send: Any) -> None:
        got.append(await receive())  # the (empty) body
        got.append(await receive())  # then only the disconnect can come
        done.set()

    with running(waits) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        sock.close()
        assert done.wait(5)
    assert got[0]["type"] == "http.request" and got[1] == {"type": "http.disconnect"}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_starlette_server_sent_events_stop_when_curl_gives_up() -> None:
    # The case: `curl -sN --max-time 1.2 .../sse` left the generator running.
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    state = {"ticks": 0, "finished": False}

    async def events() -> AsyncIterator[bytes]:
        try:
            while True:
                state["ticks"] += 1
                yield b"data: tick\n\n"
                await asyncio.sleep(0.1)
        finally:
            state["finished"] = True

    async def sse(request: Any) -> StreamingResponse:
        return StreamingResponse(events(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/sse", sse)])
    with running(app) as server:
        out = subprocess.run(["curl", "-sN", "--max-time", "1.2",
                              f"http://127.0.0.1:{server.port}/sse"],
                             capture_output=True, timeout=10)
        assert out.returncode == 28 and b"data: tick" in out.stdout  # 28: curl's timeout
        assert wait_for(lambda: bool(state["finished"]), 5), "the generator kept running"
        ticks = state["ticks"]
        time.sleep(0.3)
        assert state["ticks"] == ticks
