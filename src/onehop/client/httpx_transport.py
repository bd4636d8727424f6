"""httpx on onehop's keep-alive pool: ``HTTPXTransport`` for ``httpx.AsyncClient``,
``SyncHTTPXTransport`` for ``httpx.Client`` (issues 4 and 15).

httpx is an optional extra: this module imports it, and ``onehop.client``
imports this module only when one of the transports is first asked for, so
onehop works without httpx installed.

httpx builds the request (URL, ``Host``, framing fields, cookies, redirects);
a transport hands the end-to-end part to :meth:`Client.send` and maps onehop's
errors, one class per cause, onto httpx's exception classes. The response
carries ``extensions["http_version"]`` (``b"HTTP/1.1"`` or ``b"HTTP/1.0"``),
``"reason_phrase"``, and onehop's ``"onehop_reused"`` (the request went over a
connection that had carried an earlier exchange) and ``"onehop_connection_id"``.

The sync transport does not re-implement the pool with blocking sockets: it
runs the same :class:`Client` on a private event loop in a thread of its own
(:class:`~onehop.client.loop_thread.LoopThread`), so both transports keep the
same connection guarantees (reuse only when clean, resend only as
:func:`~onehop.client.exchange.should_resend` allows).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import Final

import httpx

from onehop.client.client import Body, Client
from onehop.client.errors import (
    ClientError,
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    PoolTimeout,
    ReadTimeout,
    ServerDisconnected,
    WriteTimeout,
)
from onehop.client.loop_thread import LoopThread
from onehop.client.response import Response, Timeout
from onehop.errors import LocalProtocolError, RemoteProtocolError

#: Fields httpx writes that are ours to write (framing) or hop-by-hop (RFC 9110 §7.6.1).
_DROPPED: Final = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"proxy-connection"}
)
#: What a transport catches from onehop and maps to httpx's classes.
_MAPPED: Final = (ClientError, RemoteProtocolError, LocalProtocolError, OSError)

_ASYNC_ONLY: Final = (
    "HTTPXTransport is the transport for httpx.AsyncClient; for httpx.Client use "
    "onehop.client.SyncHTTPXTransport()"
)
_SYNC_ONLY: Final = (
    "SyncHTTPXTransport is the transport for httpx.Client; for httpx.AsyncClient use "
    "onehop.client.HTTPXTransport()"
)


def _map_error(exc: BaseException, request: httpx.Request) -> Exception:
    """The httpx exception for one of onehop's, keeping the message that names the cause."""
    text = str(exc) or type(exc).__name__
    kind: type[httpx.TransportError]
    if isinstance(exc, ConnectTimeout):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, ReadTimeout):
        kind = httpx.ReadTimeout
    elif isinstance(exc, WriteTimeout):
        kind = httpx.WriteTimeout
    elif isinstance(exc, PoolTimeout):
        kind = httpx.PoolTimeout
    elif isinstance(exc, ConnectError):
        kind = httpx.ConnectError
    elif isinstance(exc, InvalidURL):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, ServerDisconnected | RemoteProtocolError):
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, LocalProtocolError):
        kind = httpx.LocalProtocolError
    elif isinstance(exc, OSError):
        kind = httpx.NetworkError
    else:
        kind = httpx.TransportError
    return kind(text, request=request)


def _timeout(request: httpx.Request, default: Timeout) -> Timeout:
    given = request.extensions.get("timeout")
    if not isinstance(given, dict):
        return default
    return Timeout(
        connect=given.get("connect", default.connect),
        read=given.get("read", default.read),
        write=given.get("write", default.write),
        pool=given.get("pool", default.pool),
    )


def _wire_headers(request: httpx.Request) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in request.headers.raw if k.lower() not in _DROPPED]


def _content(request: httpx.Request, body: Body) -> Body:
    """None for a GET or HEAD without a body (no ``Content-Length: 0`` sent)."""
    if body == b"" and request.method in ("GET", "HEAD"):
        return None
    return body


def _response(
    response: Response, stream: httpx.SyncByteStream | httpx.AsyncByteStream
) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers.raw,
        stream=stream,
        extensions={
            "http_version": f"HTTP/{response.http_version}".encode("ascii"),
            "reason_phrase": response.reason.encode("latin-1"),
            "onehop_reused": response.reused,
            "onehop_connection_id": response.connection_id,
        },
    )


class _ResponseStream(httpx.AsyncByteStream):
    """The response body as httpx wants it; closing it gives the connection back."""

    def __init__(self, response: Response, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except _MAPPED as exc:
            raise _map_error(exc, self._request) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


async def _request_body(stream: httpx.AsyncByteStream) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk


class HTTPXTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` backed by a :class:`~onehop.client.Client`.

    ``httpx.AsyncClient(transport=HTTPXTransport())``: connections are pooled,
    reused while clean and retried only as :func:`is_retry_safe` allows. The
    keyword arguments go to :class:`Client` (limits, ``verify``, ``pipeline``...);
    or pass an existing *client*, which the transport then does not close.
    Given to ``httpx.Client`` it raises ``TypeError`` naming
    :class:`SyncHTTPXTransport`.

    Raises (from ``handle_async_request`` and the response stream): httpx's
    ``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``, ``WriteTimeout``,
    ``PoolTimeout``, ``RemoteProtocolError`` (a server that disconnected or broke
    HTTP), ``LocalProtocolError``, ``UnsupportedProtocol``, each with onehop's
    message naming the cause.
    """

    def __init__(self, client: Client | None = None, **client_options: object) -> None:
        if client is not None and client_options:
            raise TypeError("pass either a client or Client options, not both")
        self._owns_client = client is None
        self.client = client if client is not None else Client(**client_options)  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body: Body
        try:
            body = request.content
        except httpx.RequestNotRead:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            body = _request_body(request.stream)
        try:
            response = await self.client.send(
                request.method,
                str(request.url),
                headers=_wire_headers(request),
                content=_content(request, body),
                timeout=_timeout(request, self.client.timeout),
            )
        except _MAPPED as exc:
            raise _map_error(exc, request) from exc
        return _response(response, _ResponseStream(response, request))

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    # httpx.Client calls these: say which transport it wants instead of AttributeError.

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Refuse: this transport serves ``httpx.AsyncClient`` only.

        Raises:
            TypeError: always, naming :class:`SyncHTTPXTransport`.
        """
        raise TypeError(_ASYNC_ONLY)

    def __enter__(self) -> HTTPXTransport:
        raise TypeError(_ASYNC_ONLY)

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ raises
        raise TypeError(_ASYNC_ONLY)

    def close(self) -> None:
        """Refuse: a sync close cannot close connections on the caller's event loop.

        Raises:
            TypeError: always, naming :class:`SyncHTTPXTransport`.
        """
        raise TypeError(_ASYNC_ONLY)


class _SyncResponseStream(httpx.SyncByteStream):
    """The response body for ``httpx.Client``.

    Each trip to the loop thread costs two thread switches, so a trip takes
    every piece already received (:meth:`Response.read_ready`): a body that came
    with its head costs no trip at all, a longer one a trip per arrival.
    """

    def __init__(
        self,
        runner: LoopThread,
        response: Response,
        request: httpx.Request,
        ready: tuple[list[bytes], bool],
    ) -> None:
        self._runner = runner
        self._response = response
        self._request = request
        self._ready = ready

    def __iter__(self) -> Iterator[bytes]:
        pieces, ended = self._ready
        self._ready = ([], ended)
        while True:
            yield from pieces
            if ended:
                return
            try:
                pieces, ended = self._runner.run(self._response.aread_some())
            except _MAPPED as exc:
                raise _map_error(exc, self._request) from exc

    def close(self) -> None:
        if not self._response.is_closed and self._runner.started:
            self._runner.run(self._response.aclose())


async def _send_and_take_ready(
    client: Client, request: httpx.Request, body: Body
) -> tuple[Response, tuple[list[bytes], bool]]:
    """On the loop: send, then take the body already received with the head."""
    response = await client.send(
        request.method,
        str(request.url),
        headers=_wire_headers(request),
        content=_content(request, body),
        timeout=_timeout(request, client.timeout),
    )
    return response, response.read_ready()


async def _sync_body(stream: Iterable[bytes]) -> AsyncIterator[bytes]:
    """A ``httpx.Client`` upload stream, iterated on the loop thread (see the class)."""
    for chunk in stream:
        yield chunk


class SyncHTTPXTransport(httpx.BaseTransport):
    """An ``httpx.BaseTransport`` for ``httpx.Client``, on onehop's pool.

    ``httpx.Client(transport=SyncHTTPXTransport())``. The pool and its
    connections live on a private event loop in a daemon thread, started on the
    first request (:class:`~onehop.client.loop_thread.LoopThread`); each call
    blocks its thread while the loop does the exchange, so the connection
    guarantees are exactly those of :class:`Client` and :class:`HTTPXTransport`.
    The keyword arguments go to :class:`Client`.

    Thread safety: one transport may serve any number of threads at once (an
    ``httpx.Client`` shared between threads); their requests share one pool. A
    streamed upload (an iterator given as ``content``) is iterated on the loop's
    thread, so it should not block for long. :meth:`close` (``httpx.Client``
    closes it) closes every connection and stops the thread; requests still
    waiting in other threads then fail with ``httpx.TransportError``.
    Given to ``httpx.AsyncClient`` it raises ``TypeError`` naming
    :class:`HTTPXTransport`.

    Raises: as :class:`HTTPXTransport`.
    """

    def __init__(self, **client_options: object) -> None:
        self.client = Client(**client_options)  # type: ignore[arg-type]
        self._runner = LoopThread("onehop-httpx")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body: Body
        try:
            body = request.content
        except httpx.RequestNotRead:
            assert isinstance(request.stream, Iterable)
            body = _sync_body(request.stream)
        try:
            response, ready = self._runner.run(_send_and_take_ready(self.client, request, body))
        except _MAPPED as exc:
            raise _map_error(exc, request) from exc
        return _response(response, _SyncResponseStream(self._runner, response, request, ready))

    def close(self) -> None:
        """Close every pooled connection and stop the loop thread (idempotent)."""
        self._runner.close(self.client.aclose())

    # httpx.AsyncClient calls these: say which transport it wants instead of AttributeError.

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Refuse: this transport serves ``httpx.Client`` only.

        Raises:
            TypeError: always, naming :class:`HTTPXTransport`.
        """
        raise TypeError(_SYNC_ONLY)

    async def __aenter__(self) -> SyncHTTPXTransport:
        raise TypeError(_SYNC_ONLY)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:  # pragma: no cover - __aenter__ raises
        raise TypeError(_SYNC_ONLY)

    async def aclose(self) -> None:
        """Refuse: see :meth:`handle_async_request`.

        Raises:
            TypeError: always.
        """
        raise TypeError(_SYNC_ONLY)

