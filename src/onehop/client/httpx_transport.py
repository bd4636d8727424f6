"""``HTTPXTransport``: run ``httpx.AsyncClient`` on onehop's keep-alive pool (issue 4).

httpx is an optional extra: this module imports it, and ``onehop.client``
imports this module only when ``HTTPXTransport`` is first asked for, so onehop
works without httpx installed.

httpx builds the request (URL, ``Host``, framing fields, cookies, redirects);
this transport hands the end-to-end part to :meth:`Client.send` and maps
onehop's errors, one class per cause, onto httpx's exception classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import httpx

from onehop.client.client import Client, Response, Timeout
from onehop.client.errors import (
    ClientError,
    ConnectError,
    ConnectTimeout,
    PoolTimeout,
    ReadTimeout,
    ServerDisconnected,
    WriteTimeout,
)
from onehop.errors import RemoteProtocolError

#: Fields httpx writes that are ours to write (framing) or hop-by-hop (RFC 9110 §7.6.1).
_DROPPED: Final = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"proxy-connection"}
)


def _map_error(exc: Exception, request: httpx.Request) -> Exception:
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
    elif isinstance(exc, ServerDisconnected | RemoteProtocolError):
        kind = httpx.RemoteProtocolError
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


class _ResponseStream(httpx.AsyncByteStream):
    """The response body as httpx wants it; closing it gives the connection back."""

    def __init__(self, response: Response, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except (ClientError, RemoteProtocolError, OSError) as exc:
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

    Raises (from ``handle_async_request`` and the response stream): httpx's
    ``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``, ``WriteTimeout``,
    ``PoolTimeout``, ``RemoteProtocolError`` (a server that disconnected or broke
    HTTP), each with onehop's message naming the cause.
    """

    def __init__(self, client: Client | None = None, **client_options: object) -> None:
        if client is not None and client_options:
            raise TypeError("pass either a client or Client options, not both")
        self._owns_client = client is None
        self.client = client if client is not None else Client(**client_options)  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _DROPPED]
        content: bytes | AsyncIterator[bytes]
        try:
            content = request.content
        except httpx.RequestNotRead:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            content = _request_body(request.stream)
        try:
            response = await self.client.send(
                request.method,
                str(request.url),
                headers=headers,
                content=content if content != b"" or request.method not in ("GET", "HEAD")
                else None,
                timeout=_timeout(request, self.client.timeout),
            )
        except (ClientError, RemoteProtocolError, OSError) as exc:
            raise _map_error(exc, request) from exc
        return httpx.Response(
            response.status_code,
            headers=[(k, v) for _, k, v in response.headers.fields],
            stream=_ResponseStream(response, request),
            extensions={
                "http_version": f"HTTP/{response.http_version}".encode("ascii"),
                "reason_phrase": response.reason.encode("latin-1"),
                "onehop_reused": response.reused,
            },
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
