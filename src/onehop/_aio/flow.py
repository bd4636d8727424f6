"""Write-side flow control for an :class:`asyncio.Protocol`.

The transport calls ``pause_writing`` when its buffer passes the high-water
mark; a coroutine that produces output awaits :meth:`FlowControl.drain` before
writing more, so a slow reader cannot make us buffer an unbounded response.
Owned by one protocol instance and touched only from its event loop.
"""

from __future__ import annotations

import asyncio


class FlowControl:
    """Tracks whether the transport accepts more output and lets writers wait."""

    __slots__ = ("_closed", "_waiter", "write_paused")

    def __init__(self) -> None:
        self.write_paused = False
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    async def drain(self) -> None:
        """Return once the transport is below its low-water mark or closed."""
        if not self.write_paused or self._closed:
            return
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._waiter)

    def pause_writing(self) -> None:
        """Transport callback: stop producing output."""
        self.write_paused = True

    def resume_writing(self) -> None:
        """Transport callback: output may flow again."""
        self.write_paused = False
        self._wake()

    def close(self) -> None:
        """The connection is gone: nobody may wait on it any more."""
        self._closed = True
        self.write_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
