"""Reading a response off a client connection: its head (1xx skipped or relayed),
its body piece by piece, and the answer that comes before ``100 Continue``.

The reading half of :class:`onehop.client.connection.HTTPConnection`, which
builds on it: the protocol callbacks there feed bytes to the core and resolve
the one waiter made here; the task that borrowed the connection reads events
with these methods. One lazily re-armed timer times every wait, so a warm
exchange costs no timer churn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from onehop._aio import LazyTimer
from onehop.client.errors import ClosedBeforeResponse, ReadTimeout, ServerDisconnected
from onehop.core import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Response,
)
from onehop.core import Connection as CoreConnection


class ResponseReader(asyncio.Protocol):
    """What reading a response needs: the core, the waiter and its timer, and what
    the protocol callbacks record (bytes received, EOF, loss)."""

    def __init__(self, core: CoreConnection) -> None:
        self.core = core
        #: Bytes received since the current request was sent (for retry decisions).
        self.bytes_received = 0
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self._eof = False
        self._lost = False
        self._lost_exc: BaseException | None = None
        #: A final response that arrived while we waited for ``100 Continue``.
        self._early: Response | None = None
        #: A 1xx response arrived for the current request (its answer has begun).
        self._informed = False
        # One lazily re-armed read timer for every wait; it times out ``_waiter``.
        self._timer = LazyTimer(self._loop, self._read_timed_out)

    def _prepare_wait(self, timeout: float | None) -> asyncio.Future[None]:
        """The future the next ``data_received``/EOF/close resolves (timed by *timeout*)."""
        if self._read_paused and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()
        fut = self._waiter = self._loop.create_future()
        if timeout is not None:
            self._timer.arm(timeout)
        return fut

    async def _next_event(self, timeout: float | None) -> Event:
        core = self.core
        while True:
            event = core.next_event()
            if event is not NEED_DATA:
                if not isinstance(event, Event):
                    raise _paused()
                return event
            try:
                await self._prepare_wait(timeout)
            finally:
                self._waiter = None
                self._timer.disarm()

    def _read_timed_out(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ReadTimeout("timed out"))

    async def _await_continue(self, wait: float) -> Response | None:
        """Wait up to *wait* s for ``100 Continue``; return a final response that came first.

        RFC 9110 §10.1.1: a client that sent ``100-continue`` need not wait
        forever (an HTTP/1.0 server or proxy never sends 100).

        Raises:
            ClosedBeforeResponse: the server closed before answering.
            ServerDisconnected: it closed after an interim (1xx) response.
        """
        deadline = self._loop.time() + wait
        while True:
            left = deadline - self._loop.time()
            if left <= 0:
                return None
            try:
                event = await self._next_event(left)
            except ReadTimeout:
                return None
            if type(event) is InformationalResponse:
                self._informed = True
                if event.status_code == 100:
                    return None
                continue
            if type(event) is Response:
                return event
            raise self._closed_unanswered()

    async def read_response_head(
        self,
        timeout: float | None,
        *,
        on_informational: Callable[[InformationalResponse], object] | None = None,
    ) -> Response:
        """Return the final response head, skipping 1xx responses (RFC 9110 §15.2).

        *on_informational*, if given, is called with each 1xx response as it
        arrives (a proxy relays them: RFC 9110 §15.2, "A proxy MUST forward 1xx
        responses"); without it they are skipped, as a user agent may.

        Raises:
            ClosedBeforeResponse: the server closed (or reset) before this response
                began, or had answered an earlier pipelined request with ``close``.
            ServerDisconnected: it closed after a 1xx, before the final response.
            ReadTimeout: nothing arrived within *timeout*.
            RemoteProtocolError: the server sent invalid HTTP.
        """
        early = self._early
        if early is not None:
            self._early = None
            self._informed = False
            return early
        core = self.core
        # Nothing arrived since the request went out and nothing waits unparsed: the
        # answer cannot be parsed yet, so wait before asking the parser.
        idle = not self.bytes_received and not core.buffered and not self._eof and not self._lost
        while True:
            # ``_next_event`` inlined: one coroutine fewer per response.
            if idle:
                idle = False
                event: Event | object = NEED_DATA
            else:
                event = core.next_event()
            if event is NEED_DATA:
                try:
                    await self._prepare_wait(timeout)
                finally:
                    self._waiter = None
                    self._timer.disarm()
                continue
            if type(event) is Response:
                self._informed = False  # (the next pipelined answer starts afresh)
                return event
            if not isinstance(event, Event):
                raise _paused()
            if type(event) is InformationalResponse:
                self._informed = True
                if on_informational is not None:
                    on_informational(event)
                continue
            if type(event) is ConnectionClosed:
                raise self._closed_unanswered()
            raise ServerDisconnected(f"unexpected event {event!r}")  # pragma: no cover

    def _closed_unanswered(self) -> ServerDisconnected:
        """The core read EOF where this request's response should begin.

        The core reports ``ConnectionClosed`` only between messages (EOF inside a
        head is ``IncompleteMessage``), so no byte of this response arrived: that
        is :class:`ClosedBeforeResponse`, unless a 1xx for it came first (the
        server began to act on it).
        """
        text = "server closed the connection without answering"
        exc = self._lost_exc
        if isinstance(exc, ConnectionResetError):
            text = "connection reset by the server before it answered"
        if exc is not None:
            text += f" ({exc})"
        if self._informed:
            return ServerDisconnected(text + " after an interim (1xx) response")
        return ClosedBeforeResponse(text)

    async def read_chunk(self, timeout: float | None) -> bytes | None:
        """Return the next piece of the response body, or None at its end.

        Raises:
            ReadTimeout, RemoteProtocolError (``IncompleteMessage`` when the
            server closed mid-body, RFC 9112 §8).
        """
        event = await self._next_event(timeout)
        if type(event) is Data:
            return event.data
        if type(event) is EndOfMessage:
            return None
        raise ServerDisconnected(f"unexpected event {event!r}")  # pragma: no cover

    async def read_body_event(self, timeout: float | None) -> bytes | EndOfMessage:
        """Return the next piece of the response body, or its end with the trailer fields.

        Like :meth:`read_chunk`, but the end is the :class:`EndOfMessage` itself,
        so a proxy can forward trailer fields (RFC 9110 §6.5, RFC 9112 §7.1.2)
        that :meth:`read_chunk` drops.

        Raises:
            ReadTimeout, RemoteProtocolError (``IncompleteMessage`` when the
            server closed mid-body, RFC 9112 §8).
        """
        return self._body_event(await self._next_event(timeout))

    def read_body_event_nowait(self) -> bytes | EndOfMessage | None:
        """What :meth:`read_body_event` would return without waiting; None if it must wait.

        Lets a relay gather everything already received (head, body, end) into
        one write instead of one system call per piece.

        Raises:
            RemoteProtocolError: as :meth:`read_body_event`.
        """
        event = self.core.next_event()
        if event is NEED_DATA:
            return None
        return self._body_event(event)

    async def wait_data(self, timeout: float | None) -> None:
        """Wait until more bytes (or EOF, or loss) arrive, for a caller that reads ``core``
        itself (as a relay does, gathering several events into one write).

        Raises:
            ReadTimeout: nothing arrived within *timeout*.
        """
        try:
            await self._prepare_wait(timeout)
        finally:
            self._waiter = None
            self._timer.disarm()

    @staticmethod
    def _body_event(event: object) -> bytes | EndOfMessage:
        if type(event) is Data:
            return event.data
        if type(event) is EndOfMessage:
            return event
        raise ServerDisconnected(f"unexpected event {event!r}")  # pragma: no cover

def _paused() -> ServerDisconnected:
    # PAUSED: an earlier response on this connection ended it (``close``,
    # RFC 9112 §9.6), so a pipelined request behind it gets no answer here: no byte
    # of its response came (RFC 9112 §9.3.2 lets an idempotent one be resent).
    return ClosedBeforeResponse("the server answered an earlier request with Connection: close")
