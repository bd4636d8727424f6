"""One timer handle per connection, re-armed lazily, for deadlines that keep moving.

A keep-alive connection sets a new deadline for every request (idle, header,
body or upstream read timeout). Cancelling and creating a ``TimerHandle``
each time is measurable on the hot path, so a :class:`LazyTimer` keeps one
handle: a later deadline only moves :attr:`LazyTimer.deadline`, and the
handle, when it fires early, re-arms itself for the rest. Only a deadline
earlier than the pending handle costs a cancel and a new handle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class LazyTimer:
    """Calls *callback* once :attr:`deadline` (loop time; 0.0: none) has passed."""

    __slots__ = ("_callback", "_handle", "_loop", "_when", "deadline")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0
        self.deadline = 0.0

    @property
    def pending(self) -> bool:
        """Whether a timer handle is scheduled (it may lapse as a no-op)."""
        return self._handle is not None

    def arm(self, delay: float) -> None:
        """Make the deadline *delay* seconds from now, replacing any earlier one."""
        deadline = self._loop.time() + delay
        self.deadline = deadline
        handle = self._handle
        if handle is not None:
            if self._when <= deadline:
                return  # fires early, sees the later deadline and re-arms for the rest
            handle.cancel()
        self._when = deadline
        self._handle = self._loop.call_at(deadline, self._fired)

    def disarm(self) -> None:
        """No deadline now; the pending handle, if any, lapses as a no-op."""
        self.deadline = 0.0

    def cancel(self) -> None:
        """No deadline and no pending handle (the connection is closing)."""
        self.deadline = 0.0
        handle = self._handle
        if handle is not None:
            handle.cancel()
            self._handle = None

    def _fired(self) -> None:
        self._handle = None
        deadline = self.deadline
        if not deadline:
            return
        if self._loop.time() < deadline:
            self._when = deadline
            self._handle = self._loop.call_at(deadline, self._fired)
            return
        self.deadline = 0.0
        self._callback()
