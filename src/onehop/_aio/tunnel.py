"""Byte tunnels after ``101 Switching Protocols`` or a ``CONNECT`` 2xx (RFC 9110 §7.8, §9.3.6).

A :class:`Pipe` joins two transports that both switched protocols (the
client's, and the upstream's): each side's bytes are written to the other
from the receiving callback, with no task. Backpressure: when one transport's
write buffer passes its high-water mark, the other side stops reading until it
drains. End-of-stream is passed on as a half-close (``write_eof``), so a peer
that shuts its sending side still gets the other side's remaining bytes; the
tunnel ends when both directions have ended, either side is lost, or it was
idle in both directions for ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

from onehop._aio.timer import LazyTimer

#: How a side of the tunnel is closed (its owner's close: it keeps its books right).
Closer = Callable[[], object]

_A: Final = 0
_B: Final = 1


class _Side:
    """The receiving half of one transport in the tunnel (what its protocol forwards to)."""

    __slots__ = ("eof", "index", "pipe")

    def __init__(self, pipe: Pipe, index: int) -> None:
        self.pipe = pipe
        self.index = index
        self.eof = False

    def data_received(self, data: bytes) -> None:
        self.pipe._forward(self.index, data)

    def eof_received(self) -> bool | None:
        self.eof = True
        self.pipe._half_close(self.index)
        return True  # keep our writing half open for the other direction

    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe.close()

    def pause_writing(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.pipe.transports[1 - self.index].pause_reading()

    def resume_writing(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.pipe.transports[1 - self.index].resume_reading()


class Pipe:
    """Copies bytes both ways between transports *a* and *b* (see the module docstring).

    Hand ``pipe.a`` to *a*'s protocol and ``pipe.b`` to *b*'s as their receivers
    (``ServerEndpoint.switch``, ``HTTPConnection.switch``). ``counts`` holds the
    bytes copied a->b and b->a; *on_close* is called once with them.
    """

    def __init__(self, a: asyncio.Transport, b: asyncio.Transport, close_a: Closer,
                 close_b: Closer, *, idle_timeout: float | None = None,
                 on_close: Callable[[int, int], object] | None = None) -> None:
        self.transports = (a, b)
        self._closers = (close_a, close_b)
        self.a = _Side(self, _A)
        self.b = _Side(self, _B)
        self.counts = [0, 0]
        self.closed = False
        self._on_close = on_close
        self._idle_timeout = idle_timeout
        self._timer: LazyTimer | None = None
        if idle_timeout is not None:
            self._timer = LazyTimer(asyncio.get_running_loop(), self._idle)
            self._timer.arm(idle_timeout)

    def _forward(self, index: int, data: bytes) -> None:
        if self.closed:
            return
        self.counts[index] += len(data)
        peer = self.transports[1 - index]
        if not peer.is_closing():
            peer.write(data)
        if self._timer is not None and self._idle_timeout is not None:
            self._timer.arm(self._idle_timeout)  # (moves the deadline; no new handle)

    def _half_close(self, index: int) -> None:
        if self.closed:
            return
        sides = (self.a, self.b)
        if sides[0].eof and sides[1].eof:
            self.close()
            return
        peer = self.transports[1 - index]
        if peer.can_write_eof() and not peer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                peer.write_eof()

    def _idle(self) -> None:
        self.close()  # nothing in either direction for idle_timeout

    def close(self) -> None:
        """End the tunnel: close both sides (once)."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        for closer in self._closers:
            closer()
        if self._on_close is not None:
            self._on_close(self.counts[0], self.counts[1])
