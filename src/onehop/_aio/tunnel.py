"""Byte tunnels after ``101 Switching Protocols`` or a ``CONNECT`` 2xx (RFC 9110 §7.8, §9.3.6).

A :class:`Pipe` joins two connections that both switched protocols (the
client's serving endpoint and the upstream connection): each side's bytes are
written to the other from the receiving callback, with no task. Backpressure:
when one side's write buffer passes its high-water mark, the other side stops
reading until it drains. End-of-stream is passed on as a half-close
(``write_eof``), so a peer that shuts its sending side still gets the other
side's remaining bytes; the tunnel ends when both directions have ended,
either side is lost, or it was idle in both directions for ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from onehop._aio.timer import LazyTimer


class End(Protocol):
    """One side of a tunnel: the connection's own writing and reading controls."""

    def write(self, data: bytes) -> None: ...

    def write_eof(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> object: ...


class _Side:
    """The receiving half of one end (what its protocol forwards raw bytes to)."""

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
        if not self.pipe.closed:
            self.pipe.ends[1 - self.index].pause_reading()

    def resume_writing(self) -> None:
        if not self.pipe.closed:
            self.pipe.ends[1 - self.index].resume_reading()

    def shutdown(self) -> None:
        pass  # a tunnel lasts until the grace period ends (then it is cut)


class Pipe:
    """Copies bytes both ways between ends *a* and *b* (see the module docstring).

    Hand ``pipe.a`` to *a*'s ``switch`` and ``pipe.b`` to *b*'s as their receivers.
    ``counts`` holds the bytes copied a->b and b->a; *on_close* gets them once.
    """

    def __init__(self, a: End, b: End, *, idle_timeout: float | None = None,
                 on_close: Callable[[int, int], object] | None = None) -> None:
        self.ends = (a, b)
        self.a = _Side(self, 0)
        self.b = _Side(self, 1)
        self.counts = [0, 0]
        self.closed = False
        self._on_close = on_close
        self._idle_timeout = idle_timeout
        self._timer: LazyTimer | None = None
        if idle_timeout is not None:
            self._timer = LazyTimer(asyncio.get_running_loop(), self.close)
            self._timer.arm(idle_timeout)

    def _forward(self, index: int, data: bytes) -> None:
        if self.closed:
            return
        self.counts[index] += len(data)
        self.ends[1 - index].write(data)
        if self._timer is not None and self._idle_timeout is not None:
            self._timer.arm(self._idle_timeout)  # (moves the deadline; no new handle)

    def _half_close(self, index: int) -> None:
        if self.closed:
            return
        if self.a.eof and self.b.eof:
            self.close()
            return
        with contextlib.suppress(OSError, RuntimeError):
            self.ends[1 - index].write_eof()

    def close(self) -> None:
        """End the tunnel: close both ends (once)."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        for end in self.ends:
            with contextlib.suppress(Exception):
                end.close()
        if self._on_close is not None:
            self._on_close(self.counts[0], self.counts[1])
