"""A WebSocket echo load generator: N connections, K messages in flight on each.

Run as a process (pinned by the caller): ``python _wsload.py HOST PORT CONNS SIZE SECONDS``.
It opens CONNS WebSocket connections (a raw handshake, no extensions, so the server
frames without compression), keeps WINDOW masked SIZE-byte binary messages in flight on
each, counts the echoed messages by their bytes, and prints ``messages N`` and
``errors N``. Frames are built once: the client's own cost per message is a write and
a byte count, so the server under test is what is measured.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import sys
import time

WINDOW = 8


def _frame(size: int) -> bytes:
    mask = b"\x01\x02\x03\x04"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"m" * size))
    if size < 126:
        return bytes([0x82, 0x80 | size]) + mask + payload
    return bytes([0x82, 0x80 | 126]) + struct.pack("!H", size) + mask + payload


class Client(asyncio.Protocol):
    def __init__(self, frame: bytes, echo_size: int, stats: list[int],
                 ready: asyncio.Future[None]) -> None:
        self.frame = frame
        self.echo_size = echo_size
        self.stats = stats
        self.ready = ready
        self.handshaken = False
        self.buf = 0
        self.head = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(  # type: ignore[attr-defined]
            f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        if not self.handshaken:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101"):
                self.stats[1] += 1
                if not self.ready.done():
                    self.ready.set_exception(RuntimeError(self.head[:60].decode("latin-1")))
                return
            self.handshaken = True
            data = self.head[end + 4:]
            assert self.transport is not None
            self.transport.write(self.frame * WINDOW)
            if not self.ready.done():
                self.ready.set_result(None)
        self.buf += len(data)
        n, self.buf = divmod(self.buf, self.echo_size)
        if n:
            self.stats[0] += n
            assert self.transport is not None
            self.transport.write(self.frame * n)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.stats[1] += 1


async def main(host: str, port: int, conns: int, size: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    frame = _frame(size)
    echo_size = size + (2 if size < 126 else 4)  # the server's frames are unmasked
    stats = [0, 0]
    readies = []
    transports = []
    for _ in range(conns):
        ready: asyncio.Future[None] = loop.create_future()
        t, _ = await loop.create_connection(
            lambda r=ready: Client(frame, echo_size, stats, r), host, port)
        transports.append(t)
        readies.append(ready)
    await asyncio.gather(*readies)
    await asyncio.sleep(0.5)  # warm up
    start_count, t0 = stats[0], time.monotonic()
    await asyncio.sleep(seconds)
    count, elapsed = stats[0] - start_count, time.monotonic() - t0
    for t in transports:
        t.abort()
    print(f"messages {count}\nseconds {elapsed:.3f}\nerrors {stats[1]}")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    h, p, c, s, d = sys.argv[1:6]
    asyncio.run(main(h, int(p), int(c), int(s), float(d)))
