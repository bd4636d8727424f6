"""``httpx.AsyncClient(transport=HTTPXTransport())``: httpx on onehop's pool."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from onehop.client import HTTPXTransport

from .servers import Action, ScriptedServer, Seen, ok, uvicorn_server

httpx = pytest.importorskip("httpx")
pytestmark = pytest.mark.timeout(30)


async def test_httpx_client_runs_on_one_pooled_connection_against_uvicorn_rfc9112_9_3() -> None:
    async def upload() -> AsyncIterator[bytes]:
        for piece in (b"one ", b"two ", b"three"):
            yield piece

    with uvicorn_server() as port:
        transport = HTTPXTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            base = f"http://127.0.0.1:{port}"
            a = await client.get(base + "/a", params={"q": "1"})
            b = await client.post(base + "/b", content=b"body")
            c = await client.put(base + "/c", content=upload())  # chunked upload
            async with client.stream("GET", base + "/d") as d:
                streamed = b"".join([x async for x in d.aiter_bytes()])
            opened = transport.client.pool.connections_opened
    assert (a.status_code, a.text, a.http_version) == (200, "GET /a ", "HTTP/1.1")
    assert a.headers["content-type"] == "text/plain"
    assert b.text == "POST /b body"
    assert c.text == "PUT /c one two three"
    assert streamed == b"GET /d "
    assert [r.extensions["onehop_reused"] for r in (a, b, c, d)] == [False, True, True, True]
    assert opened == 1


async def test_httpx_streams_a_chunked_response_piece_by_piece_rfc9112_7_1() -> None:
    def chunked(seen: Seen) -> Action:
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"alpha", b"beta", b"gamma"))
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        return head + body + b"0\r\n\r\n", "keep"

    async with ScriptedServer(chunked) as server, httpx.AsyncClient(
        transport=HTTPXTransport()
    ) as client:
        async with client.stream("GET", server.url("/s")) as r:
            pieces = [p async for p in r.aiter_raw()]
        again = await client.get(server.url("/t"))
    assert b"".join(pieces) == b"alphabetagamma"
    assert "transfer-encoding" not in r.headers  # hop-by-hop stays in onehop's connection part
    assert again.text == "alphabetagamma"
    assert server.connections == 1


async def test_httpx_errors_name_the_cause_in_httpx_classes() -> None:
    def close_unanswered(seen: Seen) -> Action:
        return b"", "close"

    async with ScriptedServer(close_unanswered) as server, httpx.AsyncClient(
        transport=HTTPXTransport()
    ) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without answering"):
            await client.post(server.url("/p"), content=b"x")
    port = server.port
    async with httpx.AsyncClient(transport=HTTPXTransport()) as client:
        with pytest.raises(httpx.ConnectError, match="cannot connect"):
            await client.get(f"http://127.0.0.1:{port}/gone")


async def test_httpx_keep_alive_hint_and_reuse_with_scripted_server_rfc9112_9_3() -> None:
    def keep(seen: Seen) -> Action:
        return ok(seen.path.encode()), "keep"

    async with ScriptedServer(keep) as server, httpx.AsyncClient(
        transport=HTTPXTransport(max_per_origin=2)
    ) as client:
        rs = [await client.get(server.url(f"/{i}")) for i in range(4)]
    assert [r.text for r in rs] == [f"/{i}" for i in range(4)]
    assert server.connections == 1


def test_onehop_client_imports_without_httpx() -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "import onehop.client\n"
        "try:\n    onehop.client.HTTPXTransport\nexcept ImportError:\n    print('lazy')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "lazy", out.stderr
