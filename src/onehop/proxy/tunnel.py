"""Byte tunnels after ``101 Switching Protocols`` or a ``CONNECT`` 2xx (RFC 9110 §9.3.6).

Two copiers, one per direction. Each reads from one end and writes to the
other, waiting for the writer to drain before reading more (backpressure), and
passes end-of-stream on as a half-close (``write_eof``), so a peer that shuts
down its sending side still gets the other side's remaining bytes. The tunnel
ends when both directions have ended, either end fails, or it idles too long.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol


class Endpoint(Protocol):
    """One end of a tunnel."""

    async def read(self) -> bytes:
        """Return received bytes; ``b""`` at end of stream."""

    def write(self, data: bytes) -> None:
        """Queue *data* for sending."""

    async def drain(self) -> None:
        """Return once the write buffer is below its high-water mark."""

    def write_eof(self) -> None:
        """Half-close: send end-of-stream after queued data."""

    def close(self) -> None:
        """Close both directions."""


class StreamEndpoint:
    """An :class:`Endpoint` over an asyncio stream pair (the upstream side)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        try:
            return await self.reader.read(65536)
        except (ConnectionError, OSError):
            return b""

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    def write_eof(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            if self.writer.can_write_eof() and not self.writer.is_closing():
                self.writer.write_eof()

    def close(self) -> None:
        self.writer.close()


async def _copy(src: Endpoint, dst: Endpoint, counter: list[int], index: int) -> None:
    while True:
        data = await src.read()
        if not data:
            dst.write_eof()
            return
        counter[index] += len(data)
        dst.write(data)
        await dst.drain()


async def splice(a: Endpoint, b: Endpoint, idle_timeout: float | None = None) -> tuple[int, int]:
    """Copy bytes both ways until both directions end; return (a->b, b->a) byte counts.

    Half-close is passed on: EOF read from one end becomes ``write_eof`` on
    the other, and the copy the other way goes on. *idle_timeout* bounds the
    whole tunnel's silence; both ends are closed on return.
    """
    counter = [0, 0]
    tasks = [
        asyncio.ensure_future(_copy(a, b, counter, 0)),
        asyncio.ensure_future(_copy(b, a, counter, 1)),
    ]
    try:
        pending: set[asyncio.Future[None]] = set(tasks)
        while pending:
            before = list(counter)
            done, pending = await asyncio.wait(
                pending, timeout=idle_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for t in done:
                if t.exception() is not None:
                    pending = set()
                    break
            if not done and counter == before:
                break  # idle for idle_timeout in both directions
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        a.close()
        b.close()
    return counter[0], counter[1]
