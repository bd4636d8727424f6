"""The contract between the serving endpoint and what answers requests on it.

:class:`~onehop._aio.endpoint.ServerEndpoint` calls a :class:`ConnectionHandler`
(one per connection) for each request, and the :class:`RequestHandler` it returns
for that request's body and the connection's news; after a protocol switch it
hands raw bytes to a :class:`TunnelReceiver`. All are plain callbacks, called
from the event loop; none may block, none is a coroutine. :func:`error_response`
is the short error answer both the endpoint and handlers send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, Protocol

from onehop._aio.dates import DATE
from onehop._aio.flow import FlowControl
from onehop.core import (
    ConnectionInfo,
    Event,
    Headers,
    InformationalResponse,
    Request,
    Response,
)
from onehop.core.headers import NO_CONNECTION_INFO

#: The connection part of a response that only adds ``close`` (shared, read-only).
CLOSE: Final = ConnectionInfo(options=[b"close"])


class Framer(Protocol):
    """What frames a handler's answer: the HTTP/1 core (:class:`onehop.core.Connection`),
    or an HTTP/2 stream's adapter (:class:`onehop._aio.h2stream.StreamCore`)."""

    def send(self, event: Event) -> bytes:
        """The bytes for *event*, for ``write``/``finish`` (HTTP/2: ``b""``, the frames
        are queued on the connection).

        Raises:
            LocalProtocolError: the event is out of order or invalid.
        """
        ...


class Endpoint(Protocol):
    """What a handler may use of the connection it answers on: a
    :class:`~onehop._aio.endpoint.ServerEndpoint`, or one HTTP/2 stream
    (:class:`~onehop._aio.h2stream.Stream`); see their methods for what each does."""

    @property
    def core(self) -> Framer: ...

    flow: FlowControl
    loop: asyncio.AbstractEventLoop
    client_addr: tuple[str, int] | None
    server_addr: tuple[str, int] | None
    scheme: str

    def response_connection(self, conn: ConnectionInfo = NO_CONNECTION_INFO, *,
                            body_unwanted: bool = False) -> ConnectionInfo: ...

    def write(self, data: bytes) -> None: ...

    def write_eof(self) -> None: ...

    def informational(self, response: InformationalResponse) -> None: ...

    def finish(self, data: bytes = b"") -> None: ...

    def send_error(self, status: int, text: str, *, close: bool = True,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def switch(self, receiver: TunnelReceiver) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


class RequestHandler(Protocol):
    """Answers one request; all calls come from the event loop and must not block."""

    def on_body(self, data: bytes) -> None:
        """A piece of the request body (call ``endpoint.pause_reading()`` to stop more)."""

    def on_end(self, trailers: Headers) -> None:
        """The request body is complete."""

    def on_writable(self) -> None:
        """The client took our output (its transport went below the low-water mark)."""

    def on_eof(self) -> None:
        """The client shut its sending side (a half-close); it may still read the answer."""

    def on_lost(self) -> None:
        """The connection is gone or cut, or the request was abandoned (an error answered)."""


class ConnectionHandler(Protocol):
    """Makes the handler for each request on one connection (HTTP/1.x: requests one at a
    time, in order), or for the one request of an HTTP/2 stream: the factory is called
    per stream there, so what a handler keeps per connection is kept per stream, and
    concurrent streams never share it."""

    def on_request(self, endpoint: Endpoint, request: Request) -> RequestHandler:
        """Begin answering *request* (it may be answered before this returns); return
        the handler that gets its body and the connection's news."""
        ...

    def on_closed(self) -> None:
        """The connection (over HTTP/2: the stream) is over and no request will follow:
        release what is held for it (a timer whose pending handle would keep this
        handler alive until it fires). Called once, from the event loop."""
        ...


#: Makes the :class:`ConnectionHandler` of a connection (HTTP/1.x) or of a stream (HTTP/2).
HandlerFactory = Callable[[Endpoint], ConnectionHandler]


class TunnelReceiver(Protocol):
    """What takes a connection's bytes after it switched protocols (an asyncio.Protocol's
    receiving half)."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> bool | None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...

    def shutdown(self) -> None:
        """Graceful shutdown begins (a WebSocket closes with 1012; a byte tunnel lasts)."""


class Answered:
    """The request handler of a request answered at once (an error the server gives
    itself, say): nothing is left for its body or the connection's news."""

    __slots__ = ()

    def on_body(self, data: bytes) -> None:
        pass

    def on_end(self, trailers: Headers) -> None:
        pass

    def on_writable(self) -> None:
        pass

    def on_eof(self) -> None:
        pass

    def on_lost(self) -> None:
        pass


#: The one :class:`Answered` (it keeps no state).
ANSWERED: Final = Answered()


def error_response(status: int, text: str, connection: ConnectionInfo | None = None,
                   extra: list[tuple[bytes, bytes]] | None = None) -> tuple[Response, bytes]:
    """A short ``text/plain`` answer with ``Date`` (and *extra* fields); its connection
    part ``close`` (RFC 9112 §9.6) unless *connection* says otherwise."""
    body = text.encode("utf-8", "replace") + b"\n"
    headers = [
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", b"%d" % len(body)),
        (b"Date", DATE.get()),
    ]
    if extra:
        headers.extend(extra)
    return Response(status, headers, connection=CLOSE if connection is None else connection), body
