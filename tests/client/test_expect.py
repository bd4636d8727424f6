"""``Expect: 100-continue`` for large uploads (RFC 9110 §10.1.1), against a scripted server.

The server reads the request head itself and then, per mode, sends ``100
Continue``, stays silent, or answers a final status without reading the body;
it records every body byte it receives and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from onehop.client import Client

pytestmark = pytest.mark.timeout(20)

BIG = b"u" * 200_000


@dataclass
class ContinueServer:
    mode: str  # "continue", "silent" or "reject"
    heads: list[bytes] = field(default_factory=list)
    body_bytes: int = 0
    connections: int = 0
    head_at: float = 0.0
    body_at: float = 0.0
    port: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> ContinueServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._server.wait_closed()

    def url(self, path: str = "/up") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                self.head_at = time.monotonic()
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if self.mode == "reject":
                    writer.write(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!")
                    await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.3):  # would the client send it anyway?
                            while data := await reader.read(65536):
                                self.body_bytes += len(data)
                    return
                if self.mode == "continue" and b"100-continue" in head.lower():
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                body = await reader.readexactly(length)
                self.body_at = time.monotonic()
                self.body_bytes += len(body)
                answer = b"%d" % len(body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(answer), answer))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_body_is_sent_right_after_100_continue_rfc9110_10_1_1() -> None:
    async with ContinueServer("continue") as server, Client(
        expect_continue=1024, continue_wait=5.0
    ) as client:
        start = time.monotonic()
        r = await client.put(server.url(), content=BIG)
        elapsed = time.monotonic() - start
        again = await client.put(server.url(), content=BIG)
    assert b"expect: 100-continue" in server.heads[0].lower()
    assert (r.status_code, r.content) == (200, b"200000")
    assert elapsed < 2.0  # did not sit out the 5 s wait
    assert again.reused and server.connections == 1


async def test_body_is_sent_after_a_short_wait_when_no_100_comes_rfc9110_10_1_1() -> None:
    async def stream() -> AsyncIterator[bytes]:
        yield BIG[:100_000]
        yield BIG[100_000:]

    async with ContinueServer("silent") as server, Client(
        expect_continue=1024, continue_wait=0.3
    ) as client:
        r = await client.post(server.url(), content=stream(),
                              headers={"Content-Length": str(len(BIG))})
    assert b"expect: 100-continue" in server.heads[0].lower()
    assert r.content == b"200000"
    assert server.body_at - server.head_at >= 0.25


async def test_final_status_before_100_stops_the_upload_and_closes_rfc9110_10_1_1() -> None:
    async with ContinueServer("reject") as server, Client(
        expect_continue=1024, continue_wait=5.0
    ) as client:
        start = time.monotonic()
        r = await client.post(server.url(), content=BIG)
        elapsed = time.monotonic() - start
        await asyncio.sleep(0.4)  # the server listens for stray body bytes meanwhile
    assert (r.status_code, r.content) == (413, b"big!")
    assert elapsed < 2.0
    assert server.body_bytes == 0
    assert r.close_reason is not None and "100-continue" in r.close_reason


async def test_small_bodies_and_the_default_send_no_expectation() -> None:
    async with ContinueServer("silent") as server:
        async with Client(expect_continue=1024) as client:
            await client.post(server.url(), content=b"tiny")
        async with Client() as client:
            await client.post(server.url(), content=BIG)
    assert all(b"expect" not in h.lower() for h in server.heads)
    assert server.body_bytes == 4 + len(BIG)
