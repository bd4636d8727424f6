"""Writing a request onto a client connection: the head and body through the core
(which frames them, RFC 9112 §6), from a task or from event-loop callbacks, with
the transport's flow control and ``Expect: 100-continue`` (RFC 9110 §10.1.1).

The writing half of :class:`onehop.client.connection.HTTPConnection`, built on
:class:`~onehop.client.reading.ResponseReader` because waiting for ``100
Continue`` reads. A connection that breaks mid-request says how far it got with
a typed error (:class:`NothingWritten`, :class:`ClosedBeforeResponse`,
:class:`ServerDisconnected`), which is what decides a resend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable
from typing import Final

from onehop.client.errors import (
    ClosedBeforeResponse,
    NothingWritten,
    ServerDisconnected,
    WriteTimeout,
)
from onehop.client.reading import ResponseReader
from onehop.core import Connection as CoreConnection
from onehop.core import Data, EndOfMessage, Headers, Request

_END: Final = EndOfMessage()


class RequestWriter(ResponseReader):
    """What writing a request needs beyond reading: the write-pause flag the
    transport's callbacks set, its drain waiter, and the request counters."""

    def __init__(self, core: CoreConnection) -> None:
        super().__init__(core)
        self.requests_sent = 0
        #: Requests the server still accepts (``Keep-Alive: max``), None if unknown.
        self.requests_left: int | None = None
        #: Called with each request head exactly as the core wrote it (``-v`` shows
        #: every byte sent, the ``Connection`` line the core adds included). Set by
        #: the pool when tracing.
        self.on_head: Callable[[bytes], object] | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        #: The body was not sent: a final response came before ``100 Continue``.
        self._body_skipped = False

    async def send_request(
        self,
        request: Request,
        body: bytes | AsyncIterable[bytes] | None,
        write_timeout: float | None,
        continue_wait: float | None = None,
        *,
        trailers: Callable[[], Headers] | None = None,
    ) -> None:
        """Write the request head and body.

        *trailers*, for a streamed (iterable) body sent chunked, is called once
        the body is exhausted and returns the trailer fields to end it with
        (RFC 9112 §7.1.2); a proxy passes on those its client sent.

        With *continue_wait* and an ``Expect: 100-continue`` request, write the
        head, then the body only after ``100 Continue`` or *continue_wait*
        seconds; a final status that comes first is kept for
        :meth:`read_response_head` and the body is never sent (RFC 9110
        §10.1.1), which leaves the connection unclean, so it closes after the
        response.

        Raises:
            NothingWritten: the connection was already gone.
            ClosedBeforeResponse: it broke during the upload, before any response byte.
            ServerDisconnected: it broke during the upload after the server began to answer.
            LocalProtocolError: the core refused the request (or a body piece);
                when it refused the head, nothing was written.
            WriteTimeout: the server did not take the bytes in time.
        """
        if body is None:
            if self.send_request_nowait(request):
                await self._drain(write_timeout)
            return
        core = self.core
        transport = self._begin_request()
        out = core.send(request)
        if self.on_head is not None:
            self.on_head(out)
        self.requests_sent += 1
        if self.requests_left is not None:
            self.requests_left -= 1
        if continue_wait is not None and request.expects_continue:
            self._write(transport, out)
            out = b""
            if self._write_paused:
                await self._drain(write_timeout)
            self._early = await self._await_continue(continue_wait)
            if self._early is not None:
                self._body_skipped = True
                return
        if isinstance(body, bytes | bytearray | memoryview):
            if body:
                out += core.send(Data(bytes(body)))
            out += core.send(EndOfMessage())
            self._write(transport, out)
            if self._write_paused:
                await self._drain(write_timeout)
            return
        self._write(transport, out)
        async for chunk in body:
            if chunk:
                if self._lost:
                    raise self.lost_error()
                self._write(transport, core.send(Data(bytes(chunk))))
                if self._write_paused:
                    await self._drain(write_timeout)
        end = EndOfMessage(trailers()) if trailers is not None else EndOfMessage()
        self._write(transport, core.send(end))
        if self._write_paused:
            await self._drain(write_timeout)

    def _write(self, transport: asyncio.Transport, data: bytes) -> None:
        """Write *data*; a socket error (seldom raised here: asyncio reports most
        through ``connection_lost``) becomes the typed error of :meth:`lost_error`."""
        try:
            transport.write(data)
        except OSError as exc:
            raise self.lost_error(exc) from exc

    def send_request_nowait(self, request: Request) -> bool:
        """Write a request without content, synchronously: :meth:`send_request` with
        no body, minus the coroutine. Return whether the caller must then await
        :meth:`drain` (the transport's buffer is full).

        Raises:
            NothingWritten: the connection was already gone.
            LocalProtocolError: the core refused the request; nothing was written.
        """
        transport = self._begin_request()
        core = self.core
        data = core.send(request)  # (LocalProtocolError: nothing written)
        if self.on_head is not None:
            self.on_head(data)
        data += core.send(_END)
        self.requests_sent += 1
        if self.requests_left is not None:
            self.requests_left -= 1
        try:
            transport.write(data)
        except OSError as exc:
            raise self.lost_error(exc) from exc
        return self._write_paused

    def send_head_nowait(self, request: Request) -> bool:
        """Write a request head whose body follows by :meth:`send_data_nowait` and
        :meth:`send_end_nowait`, synchronously, for a caller without a task (see
        :meth:`set_listener`). Return whether writing is paused: then wait for
        ``upstream_writable`` before sending more.

        Raises:
            NothingWritten: the connection was already gone.
            LocalProtocolError: the core refused the request; nothing was written.
        """
        transport = self._begin_request()
        data = self.core.send(request)
        if self.on_head is not None:
            self.on_head(data)
        self.requests_sent += 1
        if self.requests_left is not None:
            self.requests_left -= 1
        self._write(transport, data)
        return self._write_paused

    def send_data_nowait(self, data: bytes) -> bool:
        """Write a piece of the request body (framed by the core: chunked or counted
        against Content-Length, RFC 9112 §6). Return whether writing is paused.

        Raises:
            ClosedBeforeResponse, ServerDisconnected: the connection broke (:meth:`lost_error`).
            LocalProtocolError: more than the Content-Length, or no body may follow.
        """
        transport = self._transport
        if self._lost or transport is None:
            raise self.lost_error()
        if data:
            self._write(transport, self.core.send(Data(data)))
        return self._write_paused

    def send_end_nowait(self, trailers: Headers | None = None) -> bool:
        """End the request body, with *trailers* if chunked (RFC 9112 §7.1.2). Return
        whether writing is paused.

        Raises:
            ClosedBeforeResponse, ServerDisconnected: the connection broke.
            LocalProtocolError: fewer bytes than the Content-Length were sent.
        """
        transport = self._transport
        if self._lost or transport is None:
            raise self.lost_error()
        end = _END if trailers is None else EndOfMessage(trailers)
        self._write(transport, self.core.send(end))
        return self._write_paused

    def _begin_request(self) -> asyncio.Transport:
        """Check that a request can be written; return the transport to write it to.

        Raises:
            NothingWritten: the connection was already gone (Go's nothingWrittenError:
                safe to send again elsewhere, whatever the method).
        """
        transport = self._transport
        if self._lost or transport is None or transport.is_closing():
            raise NothingWritten(
                "the connection was closed before the request was sent"
                + (f" ({self._lost_exc})" if self._lost_exc else "")
            )
        self.bytes_received = 0
        return transport

    def lost_error(self, exc: OSError | None = None) -> ServerDisconnected:
        """The error for a connection that broke after the request began to go out.

        :class:`ClosedBeforeResponse` while no byte came back since the request was
        written (RFC 9112 §9.3.1: the keep-alive race if the connection was reused),
        else :class:`ServerDisconnected`. *exc* is the socket's error, if any.
        """
        exc = exc or (self._lost_exc if isinstance(self._lost_exc, OSError) else None)
        text = "server closed the connection during the upload"
        if isinstance(exc, ConnectionResetError):
            text = "connection reset by the server during the upload"
        if exc is not None:
            text += f" ({exc})"
        if self.bytes_received or self._informed:
            return ServerDisconnected(text)
        # (Pipelined, ``bytes_received`` also counts earlier answers since this request
        # began: then this says ServerDisconnected, the cautious side.)
        return ClosedBeforeResponse(text)

    async def drain(self, write_timeout: float | None) -> None:
        """Wait until the transport takes more bytes (after :meth:`send_request_nowait`).

        Raises:
            WriteTimeout, ServerDisconnected.
        """
        await self._drain(write_timeout)

    async def _drain(self, timeout: float | None) -> None:
        while self._write_paused and not self._lost:
            fut = self._drain_waiter = self._loop.create_future()
            handle = None
            if timeout is not None:
                handle = self._loop.call_later(timeout, _expire, fut, WriteTimeout)
            try:
                await fut
            finally:
                self._drain_waiter = None
                if handle is not None:
                    handle.cancel()
        if self._lost:
            raise self.lost_error()

def _expire(fut: asyncio.Future[None], exc: type[Exception]) -> None:
    if not fut.done():
        fut.set_exception(exc("timed out"))
