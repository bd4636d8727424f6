"""Optional HTTP/1.1 pipelining per origin (RFC 9112 §9.3.2), off by default.

A :class:`Pipeline` keeps one *lane*: a pooled connection on which up to
``depth`` requests are written back to back without waiting for answers.
Responses come back in request order (RFC 9112 §9.3.2), so each exchange waits
for its turn (the previous exchange's body read to the end) before reading.

When the server closes, or answers ``Connection: close``, the requests behind
that response are never answered on this connection. The unanswered ones are
resent on a new connection when :func:`~onehop.client.exchange.should_resend`
allows (idempotent, or an ``Idempotency-Key``; a replayable body); the others fail with
:class:`PipelinedRequestUnanswered` naming the cause. RFC 9112 §9.3.2: "A client
that pipelines requests SHOULD retry unanswered requests if the connection
closes before it receives all of the corresponding responses." (Resent
requests are pipelined again at once; the RFC's advice to send just one first
after a connection *failure* is not followed yet.)

Everything runs on one event loop. ``_lock`` (an ``asyncio.Lock``) orders the
writers; the turn futures order the readers; ``Lane.in_flight`` is changed
only between awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable
from typing import Final

from onehop.client.connection import ConnState, HTTPConnection, Origin
from onehop.client.errors import PipelinedRequestUnanswered, ServerDisconnected
from onehop.client.exchange import Attempt, describe
from onehop.client.pool import Pool
from onehop.core import Request
from onehop.core import Response as CoreResponse
from onehop.errors import RemoteProtocolError

#: Times one request is sent at most (the first send and two resends after closes).
#: More than the client's two: a deep pipeline can lose the same unanswered request
#: to two ``close`` answers in a row (RFC 9112 §9.3.2 asks for the retry).
MAX_SENDS: Final = 3
Trace = Callable[[str], None]


class Lane:
    """One connection carrying pipelined exchanges, owned by its :class:`Pipeline`."""

    def __init__(self, pipe: Pipeline, conn: HTTPConnection, reused: bool) -> None:
        self.pipe = pipe
        self.conn = conn
        self.reused = reused
        #: Exchanges written and not yet finished (body read, or failed).
        self.in_flight = 0
        #: Requests written so far on this connection.
        self.sent = 0
        self.tail: asyncio.Future[None] | None = None
        self.last_head: CoreResponse | None = None
        #: Set when a response ended the connection with ``close`` (RFC 9112 §9.6).
        self.ended_by: str | None = None

    def can_take(self) -> bool:
        """Whether one more request may be written now (RFC 9112 §9.3.2: persistent only)."""
        conn = self.conn
        return (
            conn.state is ConnState.ACTIVE
            and not conn.is_stale
            and conn.core.can_send_request
            and self.in_flight < self.pipe.depth
            and (conn.requests_left is None or conn.requests_left > 0)
        )

    def leave(self, turn: asyncio.Future[None], head: CoreResponse | None) -> str | None:
        """An exchange is over: pass the read turn on; release the connection when none is left.

        *head* is the response whose body was read to the end, or None when the
        exchange failed (the caller has closed the connection). Returns why the
        connection was closed, or None while it lives.
        """
        if not turn.done():
            turn.set_result(None)
        self.in_flight -= 1
        if head is not None:
            self.last_head = head
            if head.connection.close and self.ended_by is None:
                self.ended_by = "the server answered an earlier request with Connection: close"
        conn = self.conn
        if self.in_flight:
            return conn.close_reason if conn.state is ConnState.CLOSED else None
        if self.pipe.lane is self:
            self.pipe.lane = None
        if conn.state is ConnState.CLOSED:
            return conn.close_reason
        if self.last_head is not None and conn.finish_exchange(self.last_head):
            self.pipe.pool.release(conn)
            return None
        conn.close(conn.close_reason or "pipelined exchange not clean")
        return conn.close_reason


class Pipeline:
    """Pipelined requests to one origin, on one connection at a time."""

    def __init__(self, pool: Pool, origin: Origin, depth: int, trace: Trace | None) -> None:
        self.pool = pool
        self.origin = origin
        self.depth = depth
        self.lane: Lane | None = None
        self._trace = trace
        self._lock = asyncio.Lock()

    async def send(
        self,
        request: Request,
        content: bytes | AsyncIterable[bytes] | None,
        replayable: bool,
        *,
        url: str,
        pool_timeout: float | None,
        connect_timeout: float | None,
        write_timeout: float | None,
        read_timeout: float | None,
    ) -> tuple[Lane, CoreResponse, bool, asyncio.Future[None]]:
        """Write *request* on the lane, wait for its turn, return (lane, head, reused, turn).

        The caller reads the body, then calls ``lane.leave(turn, head)``.

        Raises:
            PipelinedRequestUnanswered: the server closed or answered ``close``
                before answering, and the request may not be resent.
            ServerDisconnected, RemoteProtocolError, ClientTimeout, ConnectError:
                as :meth:`Client.send`.
        """
        method = request.method.decode()
        loop = asyncio.get_running_loop()
        attempt = Attempt(request, replayable=replayable, max_sends=MAX_SENDS)
        while True:
            async with self._lock:
                lane = self.lane
                if lane is None or not lane.can_take():
                    if lane is not None and self.lane is lane:
                        self.lane = None  # its exchanges finish; new ones go elsewhere
                    conn, was_reused = await self.pool.acquire(
                        self.origin, pool_timeout=pool_timeout, connect_timeout=connect_timeout,
                        fresh=attempt.fresh,
                    )
                    lane = self.lane = Lane(self, conn, was_reused)
                conn = lane.conn
                position = lane.sent
                lane.sent += 1
                reused = lane.reused or position > 0
                lane.in_flight += 1
                prev = lane.tail
                turn: asyncio.Future[None] = loop.create_future()
                lane.tail = turn
                attempt.begin(conn, reused)
                if self._trace is not None:
                    self._trace(f"connection #{conn.id} {'reused' if reused else 'new'} for "
                                f"{method} {url} (pipelined, {lane.in_flight} in flight)")
                try:
                    await conn.send_request(request, content, write_timeout)
                except BaseException as exc:
                    gone = isinstance(exc, ServerDisconnected | OSError)
                    why = attempt.failed(
                        exc, cause=None if gone else "pipelined request not fully written")
                    # (``intact``: the core refused the head; the lane's other exchanges go on.)
                    lane.leave(turn, None)
                    if why is None:
                        continue
                    raise
            try:
                if prev is not None:
                    await prev
                head = await conn.read_response_head(read_timeout)
            except BaseException as exc:
                if isinstance(exc, ServerDisconnected | OSError):
                    cause = lane.ended_by or describe(exc)
                elif isinstance(exc, RemoteProtocolError):
                    cause = "invalid response"
                else:
                    cause = "pipelined request cancelled"
                why = attempt.failed(exc, cause=cause)
                lane.leave(turn, None)
                if why is None:
                    if self._trace is not None:
                        self._trace(f"connection #{conn.id} ended ({cause}); resending "
                                    f"unanswered {method} {url} on another connection")
                    continue
                if isinstance(attempt.error, ServerDisconnected):
                    raise PipelinedRequestUnanswered(
                        f"{method} {url}: pipelined as request {position + 1} on connection "
                        f"#{conn.id}, but {cause} before answering it; not resent: {why}"
                    ) from exc
                raise
            return lane, head, reused, turn


