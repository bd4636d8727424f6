"""HTTPConnection for an event-driven caller: a listener with flow control, and tunnels.

Real sockets throughout: a raw asyncio server on loopback plays the upstream,
so no onehop code judges what the client sent. The tunnel tests run under the
standard loop and under uvloop (``switch`` hands the transport a new protocol;
both loops must honour it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from onehop.client import ClientError, PoolTimeout
from onehop.client.connection import ConnState, HTTPConnection, Origin
from onehop.client.pool import Pool
from onehop.core import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    ConnectionInfo,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
)

pytestmark = pytest.mark.timeout(30)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def upstream(handler: Handler) -> AsyncIterator[Origin]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield ("http", "127.0.0.1", server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


# --- set_listener: a request body streamed from callbacks -----------------------------------


class Uploader:
    """Streams *total* bytes of body from the connection's callbacks only."""

    def __init__(self, conn: HTTPConnection, total: int, piece: int = 256 * 1024) -> None:
        self.conn = conn
        self.left = total
        self.piece = b"x" * piece
        self.pauses = 0
        self.resumes = 0
        self.ended = False
        self.events: list[Event] = []
        self.done = asyncio.Event()

    def pump(self) -> None:
        while self.left:
            n = min(self.left, len(self.piece))
            self.left -= n
            if self.conn.send_data_nowait(self.piece[:n]):
                self.pauses += 1
                return  # (``upstream_writable`` goes on)
        if not self.ended:
            self.ended = True
            self.conn.send_end_nowait()

    def upstream_writable(self) -> None:
        self.resumes += 1
        assert not self.conn.write_paused
        self.pump()

    def upstream_readable(self) -> None:
        while True:
            event = self.conn.core.next_event()
            if event is NEED_DATA or event is PAUSED:
                return
            assert isinstance(event, Event)
            self.events.append(event)
            if type(event) is EndOfMessage or type(event) is ConnectionClosed:
                self.done.set()
                return


async def stream_upload() -> None:
    total = 48 * 1024 * 1024  # more than the kernel's buffers, so writing must pause
    go = asyncio.Event()
    received: list[int] = []

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        match = re.search(rb"Content-Length: (\d+)", head)
        assert match is not None
        await go.wait()  # read nothing until told
        left = int(match[1])
        while left:
            left -= len(await reader.read(min(left, 1 << 20)))
        received.append(int(match[1]))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()
        writer.close()

    async with upstream(slow_reader) as origin:
        pool = Pool()
        try:
            conn, _ = await pool.acquire(origin)
            up = Uploader(conn, total)
            conn.set_listener(up)
            head = Request(b"PUT", b"/up", [(b"Host", b"127.0.0.1"),
                                            (b"Content-Length", str(total).encode())])
            assert not conn.send_head_nowait(head)
            up.pump()
            assert up.pauses == 1 and conn.write_paused and up.left  # the server reads nothing
            go.set()
            async with asyncio.timeout(20):
                await up.done.wait()
            assert up.resumes == up.pauses >= 1 and up.left == 0 and up.ended
            assert received == [total]
            response = up.events[0]
            assert type(response) is Response and response.status_code == 200
            assert [e.data for e in up.events if type(e) is Data] == [b"ok"]
            conn.set_listener(None)
            assert conn.finish_exchange(response)  # clean: reusable (RFC 9112 §9.3)
            pool.release(conn)
            assert pool.idle_count(origin) == 1
        finally:
            await pool.aclose()


async def test_listener_streams_a_body_under_flow_control_and_reads_the_answer_rfc9112_6_2() -> None:  # noqa: E501
    await stream_upload()


def test_listener_streams_a_body_under_flow_control_under_uvloop_rfc9112_6_2() -> None:
    run_under_uvloop(stream_upload)


def run_under_uvloop(main: Callable[[], Awaitable[None]]) -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


async def test_listener_is_told_of_the_loss_of_the_connection() -> None:
    async def answer_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with upstream(answer_nothing) as origin:
        pool = Pool()
        try:
            conn, _ = await pool.acquire(origin)
            up = Uploader(conn, 0)
            conn.set_listener(up)
            conn.send_request_nowait(Request(b"GET", b"/", [(b"Host", b"127.0.0.1")]))
            await until(lambda: bool(up.events))
            assert type(up.events[0]) is ConnectionClosed and conn.at_eof
        finally:
            await pool.aclose()


# --- switch: tunnels after 101 and for CONNECT -----------------------------------------------


class Receiver:
    """Records what a tunnel delivers."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.eof = 0
        self.lost: list[Exception | None] = []

    @property
    def text(self) -> bytes:
        return b"".join(self.data)

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def eof_received(self) -> bool | None:
        self.eof += 1
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass


async def upper_echo_after_101(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer 101 (with the first tunnel bytes in the same write), then echo in capitals."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                 b"Upgrade: shout\r\n\r\nhello ")
    while data := await reader.read(65536):
        writer.write(data.upper())
    writer.write(b" BYE")  # after our FIN: the half-close let it through
    await writer.drain()
    writer.close()


async def read_switch(conn: HTTPConnection) -> InformationalResponse:
    while True:
        event = conn.core.next_event()
        if event is NEED_DATA:
            await conn.wait_data(5)
            continue
        assert type(event) is InformationalResponse, event
        return event


async def tunnel_after_101() -> None:
    async with upstream(upper_echo_after_101) as origin:
        pool = Pool(max_per_origin=1)
        try:
            conn, _ = await pool.acquire(origin)
            offer = Request(b"GET", b"/chat", [(b"Host", b"127.0.0.1")],
                            ConnectionInfo([b"upgrade"], [(b"Upgrade", b"shout")]))
            conn.send_request_nowait(offer)
            switched = await read_switch(conn)
            assert switched.status_code == 101
            receiver = Receiver()
            conn.switch(receiver)
            assert conn.state is ConnState.TUNNEL
            # Out of the idle books, still counted (RFC 9110 §15.2.2: no longer HTTP).
            assert (pool.count(origin), pool.total, pool.idle_count(origin)) == (1, 1, 0)
            with pytest.raises(PoolTimeout):
                await pool.acquire(origin, pool_timeout=0.05)
            await until(lambda: receiver.text.startswith(b"hello "))
            conn.write(b"ping")
            await until(lambda: receiver.text == b"hello PING")
            conn.write_eof()
            await until(lambda: bool(receiver.lost))
            assert receiver.text == b"hello PING BYE"
            assert receiver.eof == 1 and receiver.lost == [None]
            assert conn.state is ConnState.CLOSED and conn.close_reason == "tunnel closed"
            assert (pool.count(origin), pool.total) == (0, 0)
            again, reused = await pool.acquire(origin, pool_timeout=1)  # the slot is free
            assert again.state is ConnState.ACTIVE
            assert not reused
        finally:
            await pool.aclose()


async def test_tunnel_after_101_carries_raw_bytes_and_counts_against_the_limit_rfc9110_15_2_2() -> None:  # noqa: E501
    await tunnel_after_101()


def test_tunnel_after_101_under_uvloop_rfc9110_15_2_2() -> None:
    run_under_uvloop(tunnel_after_101)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
    writer.close()


async def test_fresh_connection_switched_before_any_request_is_a_connect_tunnel_rfc9110_9_3_6() -> None:  # noqa: E501
    async with upstream(echo) as origin:
        pool = Pool()
        try:
            conn, _ = await pool.acquire(origin)
            receiver = Receiver()
            conn.switch(receiver)
            conn.write(b"\x16\x03\x01 not http at all")
            await until(lambda: receiver.text == b"\x16\x03\x01 not http at all")
            conn.abort("client went away")
            await until(lambda: bool(receiver.lost))
            await asyncio.sleep(0.01)
            assert len(receiver.lost) == 1  # exactly once
            assert (pool.total, conn.state) == (0, ConnState.CLOSED)
            assert pool.release(conn) is None and pool.idle_count(origin) == 0
        finally:
            await pool.aclose()


async def test_connection_mid_exchange_cannot_become_a_tunnel() -> None:
    async with upstream(echo) as origin:
        pool = Pool()
        try:
            conn, _ = await pool.acquire(origin)
            conn.send_request_nowait(Request(b"GET", b"/", [(b"Host", b"127.0.0.1")]))
            with pytest.raises(ClientError, match="only after a 101"):
                conn.switch(Receiver())
            assert conn.state is ConnState.ACTIVE
            with pytest.raises(ClientError, match="for tunnels"):
                conn.write(b"raw")
        finally:
            await pool.aclose()


async def test_closing_the_pool_closes_its_tunnels() -> None:
    async with upstream(echo) as origin:
        pool = Pool()
        conn, _ = await pool.acquire(origin)
        receiver = Receiver()
        conn.switch(receiver)
        await pool.aclose()
        await until(lambda: bool(receiver.lost))
        assert conn.state is ConnState.CLOSED and pool.total == 0
