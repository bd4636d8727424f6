"""httpx on onehop's pool: ``httpx.AsyncClient(transport=HTTPXTransport())`` and
``httpx.Client(transport=SyncHTTPXTransport())`` (issues 4 and 15).

Each transport behaviour (streaming, timeouts, errors, ``response.extensions``)
runs against four clients: httpx's own sync and async transports, which define
the behaviour, and onehop's two, which must match it. A sync client's calls run
in a worker thread (``asyncio.to_thread``) so one async test drives all four
against the same real servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from onehop.client import HTTPXTransport, SyncHTTPXTransport

from .servers import Action, ScriptedServer, Seen, free_port, http10_server, ok, uvicorn_server

httpx = pytest.importorskip("httpx")
pytestmark = pytest.mark.timeout(60)

KINDS = ["httpx-async", "httpx-sync", "onehop-async", "onehop-sync"]


class Flavour:
    """One of the four clients, driven from async code."""

    def __init__(self, kind: str, *, one_connection: bool = False, **client: Any) -> None:
        self.kind = kind
        self.sync = kind.endswith("-sync")
        self.onehop = kind.startswith("onehop")
        transport: Any
        if self.onehop:
            options = {"max_per_origin": 1} if one_connection else {}
            transport = (SyncHTTPXTransport if self.sync else HTTPXTransport)(
                verify=False, **options)
        else:
            limits = httpx.Limits(max_connections=1) if one_connection else httpx.Limits()
            kind_of = httpx.HTTPTransport if self.sync else httpx.AsyncHTTPTransport
            transport = kind_of(verify=False, limits=limits)
        self.transport = transport
        self.client: Any = (httpx.Client if self.sync else httpx.AsyncClient)(
            transport=transport, **client)

    async def close(self) -> None:
        if self.sync:
            await asyncio.to_thread(self.client.close)
        else:
            await self.client.aclose()

    async def request(self, method: str, url: str, **kw: Any) -> Any:
        if self.sync:
            return await asyncio.to_thread(self.client.request, method, url, **kw)
        return await self.client.request(method, url, **kw)

    async def open_stream(self, method: str, url: str) -> Any:
        request = self.client.build_request(method, url)
        if self.sync:
            return await asyncio.to_thread(self.client.send, request, stream=True)
        return await self.client.send(request, stream=True)

    async def close_stream(self, response: Any) -> None:
        if self.sync:
            await asyncio.to_thread(response.close)
        else:
            await response.aclose()

    async def stream(self, method: str, url: str, consume: Callable[[bytes], None]) -> Any:
        """Fetch *url*, handing each raw piece of the body to *consume* as it arrives."""
        if self.sync:
            def run() -> Any:
                with self.client.stream(method, url) as r:
                    for piece in r.iter_raw():
                        consume(piece)
                return r

            return await asyncio.to_thread(run)
        async with self.client.stream(method, url) as r:
            async for piece in r.aiter_raw():
                consume(piece)
        return r


@contextlib.asynccontextmanager
async def flavour(kind: str, **options: Any) -> AsyncIterator[Flavour]:
    f = Flavour(kind, **options)
    try:
        yield f
    finally:
        await f.close()


# --- the same behaviour from all four ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_requests_and_streamed_upload_and_download_on_one_connection_rfc9112_9_3(
    kind: str,
) -> None:
    def upload() -> Iterator[bytes]:
        yield from (b"one ", b"two ", b"three")

    async def aupload() -> AsyncIterator[bytes]:
        for piece in upload():
            yield piece

    with uvicorn_server() as port:
        base = f"http://127.0.0.1:{port}"
        async with flavour(kind) as f:
            a = await f.request("GET", base + "/a", params={"q": "1"})
            b = await f.request("POST", base + "/b", content=b"body")
            c = await f.request("PUT", base + "/c", content=upload() if f.sync else aupload())
            pieces: list[bytes] = []
            d = await f.stream("GET", base + "/d", pieces.append)
    assert (a.status_code, a.text, a.http_version) == (200, "GET /a ", "HTTP/1.1")
    assert a.headers["content-type"] == "text/plain"
    assert a.extensions["http_version"] == b"HTTP/1.1"
    assert a.extensions["reason_phrase"] == b"OK"
    assert b.text == "POST /b body"
    assert c.text == "PUT /c one two three"
    assert b"".join(pieces) == b"GET /d "
    if f.onehop:
        assert [r.extensions["onehop_reused"] for r in (a, b, c, d)] == [False, True, True, True]
        assert len({r.extensions["onehop_connection_id"] for r in (a, b, c, d)}) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_http_version_extension_says_http10_for_an_http10_server(kind: str) -> None:
    with http10_server() as (port, _):
        async with flavour(kind) as f:
            r = await f.request("GET", f"http://127.0.0.1:{port}/length")
    assert r.extensions["http_version"] == b"HTTP/1.0" and r.http_version == "HTTP/1.0"
    assert r.text == "path=/length"


@pytest.mark.parametrize("kind", KINDS)
async def test_body_streams_piece_by_piece_as_it_arrives_rfc9112_7_1(kind: str) -> None:
    # The server sends the first chunk, then waits until the client has it: a transport
    # that buffered the body would only hand it over after the server gave up waiting.
    first_seen = asyncio.Event()
    order: list[str] = []
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await first_seen.wait()
        order.append("server sent the rest")
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    def consume(piece: bytes) -> None:
        order.append(piece.decode())
        loop.call_soon_threadsafe(first_seen.set)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, flavour(kind) as f:
        r = await f.stream("GET", f"http://127.0.0.1:{port}/", consume)
    assert order == ["first", "server sent the rest", "second"]
    assert "transfer-encoding" in r.headers or f.onehop  # onehop keeps hop-by-hop fields apart


@pytest.mark.parametrize("kind", KINDS)
async def test_read_timeout_is_httpx_read_timeout(kind: str) -> None:
    async with ScriptedServer(lambda seen: (ok(), "keep"), delay=2.0) as server, flavour(
        kind, timeout=httpx.Timeout(5.0, read=0.2)
    ) as f:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await f.request("GET", server.url("/slow"))
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("kind", KINDS)
async def test_connect_timeout_is_httpx_connect_timeout(kind: str) -> None:
    # A peer that accepts TCP and never answers the TLS handshake: opening the
    # connection (TCP and TLS) does not finish within the connect timeout.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, flavour(kind, timeout=httpx.Timeout(5.0, connect=0.2)) as f:
        with pytest.raises(httpx.ConnectTimeout):
            await f.request("GET", f"https://127.0.0.1:{port}/")


@pytest.mark.parametrize("kind", KINDS)
async def test_pool_timeout_is_httpx_pool_timeout(kind: str) -> None:
    def unfinished(seen: Seen) -> Action:
        if seen.path == "/held":  # a body that has begun and not ended holds its connection
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n", "keep"
        return ok(), "keep"

    async with ScriptedServer(unfinished) as server, flavour(
        kind, one_connection=True, timeout=httpx.Timeout(5.0, pool=0.2)
    ) as f:
        held = await f.open_stream("GET", server.url("/held"))  # its connection stays lent
        with pytest.raises(httpx.PoolTimeout):
            await f.request("GET", server.url("/waits"))
        await f.close_stream(held)
        after = await f.request("GET", server.url("/after"))
    assert after.status_code == 200


def _close_unanswered(seen: Seen) -> Action:
    return b"", "close"


def _garbage(seen: Seen) -> Action:
    return b"NOT HTTP AT ALL\r\n\r\n", "close"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("script", "error"), [
    (_close_unanswered, "RemoteProtocolError"),
    (_garbage, "RemoteProtocolError"),
])
async def test_broken_answers_are_httpx_remote_protocol_error(
    kind: str, script: Callable[[Seen], Action], error: str
) -> None:
    async with ScriptedServer(script) as server, flavour(kind) as f:
        with pytest.raises(getattr(httpx, error)):
            await f.request("POST", server.url("/p"), content=b"x")
    assert len(server.seen) == 1  # a POST is never sent twice


@pytest.mark.parametrize("kind", KINDS)
async def test_refused_connection_is_httpx_connect_error(kind: str) -> None:
    async with flavour(kind) as f:
        with pytest.raises(httpx.ConnectError):
            await f.request("GET", f"http://127.0.0.1:{free_port()}/gone")


@pytest.mark.parametrize("kind", KINDS)
async def test_body_cut_short_is_httpx_remote_protocol_error_rfc9112_8(kind: str) -> None:
    async with ScriptedServer(
        lambda seen: (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", "close")
    ) as server, flavour(kind) as f:
        with pytest.raises(httpx.RemoteProtocolError):
            await f.request("GET", server.url("/cut"))


# --- onehop's own: messages, reuse, the sync transport's thread -------------------------------


async def test_httpx_errors_keep_onehop_s_message_naming_the_cause() -> None:
    async with ScriptedServer(_close_unanswered) as server, httpx.AsyncClient(
        transport=HTTPXTransport()
    ) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without answering"):
            await client.post(server.url("/p"), content=b"x")
    async with httpx.AsyncClient(transport=HTTPXTransport()) as client:
        with pytest.raises(httpx.ConnectError, match="cannot connect"):
            await client.get(f"http://127.0.0.1:{server.port}/gone")


async def test_httpx_streams_a_chunked_response_and_reuses_the_connection_rfc9112_7_1() -> None:
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


async def test_httpx_keep_alive_hint_and_reuse_with_scripted_server_rfc9112_9_3() -> None:
    def keep(seen: Seen) -> Action:
        return ok(seen.path.encode()), "keep"

    async with ScriptedServer(keep) as server, httpx.AsyncClient(
        transport=HTTPXTransport(max_per_origin=2)
    ) as client:
        rs = [await client.get(server.url(f"/{i}")) for i in range(4)]
    assert [r.text for r in rs] == [f"/{i}" for i in range(4)]
    assert server.connections == 1


async def test_sync_transport_is_shared_safely_by_threads_on_one_pool() -> None:
    def keep(seen: Seen) -> Action:
        return ok(seen.path.encode()), "keep"

    async with ScriptedServer(keep) as server:
        transport = SyncHTTPXTransport(max_per_origin=4)
        with httpx.Client(transport=transport) as client:
            def worker(n: int) -> list[str]:
                return [client.get(server.url(f"/{n}/{i}")).text for i in range(5)]

            results = await asyncio.gather(*(asyncio.to_thread(worker, n) for n in range(8)))
            opened = transport.client.pool.connections_opened
    assert results == [[f"/{n}/{i}" for i in range(5)] for n in range(8)]
    assert opened <= 4 and server.max_open <= 4


async def test_sync_transport_close_stops_its_thread_and_closes_connections() -> None:
    async with ScriptedServer(lambda seen: (ok(), "keep")) as server:
        transport = SyncHTTPXTransport()
        before = {t.name for t in threading.enumerate()}
        client = httpx.Client(transport=transport)
        await asyncio.to_thread(client.get, server.url("/"))
        assert "onehop-httpx" in {t.name for t in threading.enumerate()} - before
        await asyncio.to_thread(client.close)
        await asyncio.sleep(0.05)
        assert server.open_now == 0
    assert "onehop-httpx" not in {t.name for t in threading.enumerate()} - before
    with pytest.raises(RuntimeError):  # httpx's own refusal once closed
        client.get(server.url("/"))


async def test_sync_transport_stream_closed_early_gives_up_its_connection() -> None:
    def big(seen: Seen) -> Action:
        return ok(b"x" * 1_000_000), "keep"

    async with ScriptedServer(big) as server:
        transport = SyncHTTPXTransport()

        def run() -> str:
            with httpx.Client(transport=transport) as client:
                with client.stream("GET", server.url("/big")) as r:
                    next(r.iter_raw())  # one piece, then leave
                return client.get(server.url("/next")).extensions["onehop_reused"]

        reused = await asyncio.to_thread(run)
    assert reused is False  # the unread body cost that connection; a fresh one was opened
    assert server.connections == 2


def test_each_transport_given_to_the_other_httpx_client_names_the_right_one() -> None:
    to_sync = re.escape("for httpx.Client use onehop.client.SyncHTTPXTransport")
    with pytest.raises(TypeError, match=to_sync):
        httpx.Client(transport=HTTPXTransport()).get("http://127.0.0.1:1/")
    with pytest.raises(TypeError, match="SyncHTTPXTransport"), httpx.Client(
        transport=HTTPXTransport()
    ):
        pass

    async def wrong_way() -> None:
        async with httpx.AsyncClient(transport=SyncHTTPXTransport()) as client:
            await client.get("http://127.0.0.1:1/")

    to_async = re.escape("for httpx.AsyncClient use onehop.client.HTTPXTransport")
    with pytest.raises(TypeError, match=to_async):
        asyncio.run(wrong_way())


def test_onehop_client_imports_without_httpx() -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "import onehop.client\n"
        "for name in ('HTTPXTransport', 'SyncHTTPXTransport'):\n"
        "    try:\n        getattr(onehop.client, name)\n"
        "    except ImportError:\n        print('lazy', name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.stdout.split("\n")[:2] == ["lazy HTTPXTransport", "lazy SyncHTTPXTransport"], (
        out.stderr)
