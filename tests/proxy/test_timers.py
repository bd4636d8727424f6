"""The lazily re-armed read timers (one per connection, not one per wait): a wait
that starts after an earlier one still times out at its own deadline, and a
shorter wait is not stretched by a longer timer already armed."""

from __future__ import annotations

import asyncio
import time

import pytest

from onehop.client.connection import HTTPConnection
from onehop.client.errors import ReadTimeout
from onehop.core import Request

pytestmark = pytest.mark.usefixtures("pool_state")


async def _silent_then_answer(delays: list[float | None]) -> tuple[asyncio.Server, int]:
    """An origin answering request *i* after ``delays[i]`` s (None: never)."""
    it = iter(delays)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            delay = next(it)
            if delay is None:
                await asyncio.sleep(10)
                return
            await asyncio.sleep(delay)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _connect(port: int) -> HTTPConnection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: HTTPConnection(("http", "127.0.0.1", port)),
                                           "127.0.0.1", port)
    conn.activate()
    return conn


async def _exchange(conn: HTTPConnection, timeout: float) -> None:
    conn.send_request_nowait(Request(b"GET", b"/", [(b"Host", b"x")]))
    resp = await conn.read_response_head(timeout)
    while await conn.read_chunk(timeout) is not None:
        pass
    assert conn.finish_exchange(resp)
    conn.activate()


def test_a_later_wait_times_out_at_its_own_deadline() -> None:
    async def main() -> float:
        server, port = await _silent_then_answer([0.15, None])
        conn = await _connect(port)
        try:
            await _exchange(conn, 0.3)  # arms the timer for ~0.3 s from the start
            t0 = time.monotonic()
            conn.send_request_nowait(Request(b"GET", b"/", [(b"Host", b"x")]))
            with pytest.raises(ReadTimeout):
                await conn.read_response_head(0.3)  # the armed timer fires early, re-arms
            return time.monotonic() - t0
        finally:
            conn.close("test over")
            server.close()

    waited = asyncio.run(main())
    assert 0.25 <= waited < 1.0


def test_a_shorter_wait_is_not_stretched_by_an_armed_timer() -> None:
    async def main() -> float:
        server, port = await _silent_then_answer([0.05, None])
        conn = await _connect(port)
        try:
            await _exchange(conn, 5.0)  # leaves a timer armed ~5 s out
            t0 = time.monotonic()
            conn.send_request_nowait(Request(b"GET", b"/", [(b"Host", b"x")]))
            with pytest.raises(ReadTimeout):
                await conn.read_response_head(0.2)
            return time.monotonic() - t0
        finally:
            conn.close("test over")
            server.close()

    waited = asyncio.run(main())
    assert 0.15 <= waited < 1.0


def test_no_timer_survives_close() -> None:
    async def main() -> None:
        server, port = await _silent_then_answer([0.0])
        conn = await _connect(port)
        await _exchange(conn, 30.0)
        assert conn._timer.pending  # lapses lazily while the connection lives
        conn.close("test over")
        assert not conn._timer.pending
        server.close()

    asyncio.run(main())


def test_idle_client_is_closed_at_the_idle_limit_after_its_last_request() -> None:
    import socket

    from onehop.probe.origin import RecordingOrigin
    from onehop.proxy import ProxyConfig
    from onehop.proxy.config import Timeouts
    from tests.proxy.helpers import ProxyThread

    def read_response(sock: socket.socket) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, body = buf.partition(b"\r\n\r\n")
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            body += sock.recv(65536)

    with RecordingOrigin(0) as origin:
        cfg = ProxyConfig(timeouts=Timeouts(client_idle=0.4))
        with ProxyThread(cfg, upstreams=[f"http://127.0.0.1:{origin.port}"]) as proxy:
            s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
            try:
                req = b"GET /t HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                s.sendall(req)
                read_response(s)
                time.sleep(0.25)  # the first timer is armed ~0.4 s after connecting
                s.sendall(req)
                read_response(s)
                t0 = time.monotonic()
                s.settimeout(5)
                while s.recv(65536):
                    pass
                waited = time.monotonic() - t0
            finally:
                s.close()
    assert 0.3 <= waited < 2.0
