"""The callers waiting in a pool's queue: a task in :meth:`Pool.acquire
<onehop.client.pool.Pool.acquire>` or a :class:`Loan` (callbacks, no task).

The pool serves a waiter with an idle connection or a :data:`SLOT` (leave to
open one), fails it when the pool closes, and skips one that gave up when it
reaches the head of its queue (O(1) withdrawal). A :class:`Loan` is a small
state machine of its own (``LoanState``); what it asks of the pool is the
:class:`Lender` protocol, so this module does not import the pool.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from typing import Final, Protocol

from onehop.client.connection import HTTPConnection, Origin
from onehop.client.errors import ClientClosed, ClientError


class Lender(Protocol):
    """What a :class:`Loan` asks of the pool that made it."""

    _closed: bool

    def _loop(self) -> asyncio.AbstractEventLoop: ...

    def _withdraw(self, waiter: Waiter) -> None: ...

    def _start_open(self, loan: Loan) -> None: ...

    def give_back(self, conn: HTTPConnection) -> None: ...


class Slot:
    """A reservation to open one connection, handed to a waiter."""

    __slots__ = ()


SLOT: Final = Slot()


class Waiter:
    """One caller in an origin's queue. ``queued`` is True from :meth:`Pool._enqueue`
    until it is served or withdrawn; the pool's counts follow it."""

    __slots__ = ("fresh", "origin", "queued", "seq")

    def __init__(self, origin: Origin, fresh: bool) -> None:
        self.origin = origin
        self.fresh = fresh
        self.seq = 0
        self.queued = False

    def abandoned(self) -> bool:
        """Whether the caller went away without withdrawing yet (then it is skipped)."""
        return False

    def serve(self, got: HTTPConnection | Slot) -> None:
        """Hand over an idle connection, or a slot to open one (never synchronously
        running the caller's code: the pool may be mid-dispatch)."""
        raise NotImplementedError

    def fail(self, exc: ClientError) -> None:
        """The pool closed while this waiter was queued."""
        raise NotImplementedError


class TaskWaiter(Waiter):
    """A task awaiting in :meth:`Pool.acquire`."""

    __slots__ = ("future",)

    def __init__(self, origin: Origin, fresh: bool, future: asyncio.Future[object]) -> None:
        super().__init__(origin, fresh)
        self.future = future

    def abandoned(self) -> bool:
        # Cancelling the task cancels the future at once; the task withdraws later.
        return self.future.done()

    def serve(self, got: HTTPConnection | Slot) -> None:
        self.future.set_result(got)

    def fail(self, exc: ClientError) -> None:
        if not self.future.done():
            self.future.set_result(exc)


class LoanState(enum.Enum):
    """Where a :class:`Loan` is: ``QUEUED`` -> ``LENDING`` (an idle connection is on its
    way to ``on_lent``) or ``OPENING`` (a slot was granted; the pool connects) ->
    ``LENT``; or ``FAILED`` (``on_failed`` was called) or ``CANCELLED``."""

    QUEUED = "QUEUED"
    LENDING = "LENDING"
    OPENING = "OPENING"
    LENT = "LENT"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


OnLent = Callable[[HTTPConnection, bool], object]
OnFailed = Callable[[ClientError], object]


class Loan(Waiter):
    """A place in the pool's queue for a caller that waits without a task.

    Made by :meth:`Pool.lend`. The pool later calls ``on_lent(conn, reused)``
    or ``on_failed(error)`` exactly once, from an event-loop callback (never
    from inside a pool method), unless :meth:`cancel` came first. Owned by the
    pool until then; ``state`` says where it is.
    """

    __slots__ = ("_on_failed", "_on_lent", "_pool", "conn", "connect_timeout", "state")

    def __init__(
        self,
        pool: Lender,
        origin: Origin,
        fresh: bool,
        on_lent: OnLent,
        on_failed: OnFailed,
        connect_timeout: float | None,
    ) -> None:
        super().__init__(origin, fresh)
        self._pool = pool
        self._on_lent = on_lent
        self._on_failed = on_failed
        self.connect_timeout = connect_timeout
        self.state = LoanState.QUEUED
        #: The connection lent (from ``LENDING`` on), or None.
        self.conn: HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"<Loan {self.state.name} {self.origin}>"

    def cancel(self) -> bool:
        """Withdraw; return whether there was anything to withdraw (False once lent or failed).

        O(1) in the queue. A connection already handed over (``LENDING``) goes
        back to the pool as idle; one being opened for the loan (``OPENING``)
        becomes idle when it is up (closed if the pool closed), and its slot is
        given back if connecting fails.
        """
        state = self.state
        if state is LoanState.QUEUED:
            self.state = LoanState.CANCELLED
            self._pool._withdraw(self)
            return True
        if state is LoanState.LENDING:
            self.state = LoanState.CANCELLED
            conn, self.conn = self.conn, None
            assert conn is not None
            self._pool.give_back(conn)
            return True
        if state is LoanState.OPENING:
            self.state = LoanState.CANCELLED  # (``Pool._open_for`` sees it when connected)
            return True
        return False

    def serve(self, got: HTTPConnection | Slot) -> None:
        pool = self._pool
        if isinstance(got, HTTPConnection):
            self.state = LoanState.LENDING
            self.conn = got
            pool._loop().call_soon(self._deliver, True)
        else:
            self.state = LoanState.OPENING
            pool._start_open(self)

    def fail(self, exc: ClientError) -> None:
        self.state = LoanState.FAILED
        self._pool._loop().call_soon(self._on_failed, exc)

    def _deliver(self, reused: bool) -> None:
        """Call ``on_lent`` (from the event loop), unless cancelled meanwhile."""
        if self.state is not LoanState.LENDING:
            return
        conn = self.conn
        assert conn is not None
        if self._pool._closed:
            self.state = LoanState.FAILED
            self._on_failed(ClientClosed("the client was closed"))
            return
        self.state = LoanState.LENT
        self._on_lent(conn, reused)
