"""The pooled HTTP/1.1 client: ``Client``, ``Response`` and ``Timeout``.

A request borrows a connection from the :class:`~onehop.client.pool.Pool`,
writes the request, reads the head, and hands the body to the caller as an
async iterator; when the body ends the connection goes back to the pool if it
is clean (RFC 9112 §9.3), else it is closed. A request that fails is sent once
more on a fresh connection when :func:`~onehop.client.exchange.should_resend`
says so (the connection was gone before a byte was written, or the keep-alive
race with an idempotent request, RFC 9112 §9.3.1); otherwise the error names
the cause.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Final
from urllib.parse import quote, urlsplit

from onehop.client.connection import HTTPConnection, Origin
from onehop.client.errors import (
    ClientError,
    ClientTimeout,
    ClosedBeforeResponse,
    NothingWritten,
    ReadTimeout,
    ServerClosedIdle,
    ServerDisconnected,
    WriteTimeout,
)
from onehop.client.exchange import CLIENT_MAX_SENDS, Attempt, describe
from onehop.client.pipeline import Pipeline
from onehop.client.pool import Pool, default_ssl_context
from onehop.core import ConnectionInfo, Headers, Request, split_headers
from onehop.core import Response as CoreResponse
from onehop.errors import HopByHopInHeaders

HeaderArg = Headers | dict[str, str] | list[tuple[str, str]] | list[tuple[bytes, bytes]] | None
Body = bytes | AsyncIterable[bytes] | None
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: Headers the client computes; a caller's copy is dropped (framing) or kept (Host).
_FRAMING: Final = frozenset({b"content-length"})
#: Entries kept by the URL and request memos before they start over.
_MEMO_SIZE: Final = 512
_URLS: dict[str, tuple[Origin, bytes, bytes]] = {}
_VISIBLE_ASCII: Final = "".join(map(chr, range(0x21, 0x7F)))


@dataclass(frozen=True)
class Timeout:
    """Seconds to wait for each phase; None waits forever.

    ``connect``: opening TCP and TLS. ``read``: between two received pieces.
    ``write``: for the server to take each piece we send. ``pool``: for a
    connection when the pool's limits are reached.
    """

    connect: float | None = 10.0
    read: float | None = 30.0
    write: float | None = 30.0
    pool: float | None = 30.0

    @classmethod
    def of(cls, value: Timeout | float | None) -> Timeout:
        """A Timeout from a Timeout, one number for every phase, or None (no limits)."""
        if isinstance(value, Timeout):
            return value
        return cls(value, value, value, value)


class Response:
    """A response: status, end-to-end headers, the connection part apart, and the body.

    ``headers`` never holds hop-by-hop fields; ``connection`` has the
    ``Connection`` options and connection-specific fields (RFC 9110 §7.6.1).
    ``reused`` tells whether the request went over a connection that carried
    an earlier exchange. The body is read with :meth:`aiter_bytes` or
    :meth:`aread`; :meth:`aclose` gives the connection back (or closes it
    if the body was not read to its end).
    """

    def __init__(
        self,
        head: CoreResponse,
        *,
        method: str,
        url: str,
        reused: bool,
        conn: HTTPConnection,
        pool: Pool,
        read_timeout: float | None,
        on_release: Callable[[CoreResponse | None], str | None] | None = None,
    ) -> None:
        self.status_code = head.status_code
        self.headers: Headers = head.headers
        self.connection: ConnectionInfo = head.connection
        self.method = method
        self.url = url
        self.reused = reused
        self.connection_id = conn.id
        #: Why the connection was closed after this response, or None if kept.
        self.close_reason: str | None = None
        self._head = head
        self._conn: HTTPConnection | None = conn
        self._pool = pool
        self._read_timeout = read_timeout
        self._content: bytes | None = None
        #: A pipelined exchange hands the connection back through its lane instead.
        self._on_release = on_release

    @property
    def reason(self) -> str:
        """The reason phrase (decoded as Latin-1)."""
        return self._head.reason.decode("latin-1")

    @property
    def http_version(self) -> str:
        """``"1.1"`` or ``"1.0"``."""
        return self._head.http_version.decode("ascii")

    @property
    def status(self) -> int:
        """The status code (alias of ``status_code``)."""
        return self.status_code

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason}]>"

    @property
    def content(self) -> bytes:
        """The body, after :meth:`aread`.

        Raises:
            ClientError: the body was not read yet.
        """
        if self._content is None:
            raise ClientError("the body was not read: call `await response.aread()`")
        return self._content

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (replacing invalid bytes)."""
        return self.content.decode("utf-8", "replace")

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives; the connection is released at the end.

        Raises:
            ReadTimeout, RemoteProtocolError (``IncompleteMessage`` when the
            server closed mid-body, RFC 9112 §8).
        """
        if self._content is not None:
            if self._content:
                yield self._content
            return
        conn = self._conn
        if conn is None:
            raise ClientError("the response is closed")
        try:
            while True:
                chunk = await conn.read_chunk(self._read_timeout)
                if chunk is None:
                    break
                yield chunk
        except BaseException as exc:
            self._discard(f"body not read to the end: {exc or type(exc).__name__}")
            raise
        self._done()

    async def aread(self) -> bytes:
        """Read the whole body and return it (the connection is released at the end).

        Raises: as :meth:`aiter_bytes`.
        """
        content = self._content
        if content is not None:
            return content
        conn = self._conn
        if conn is None:
            raise ClientError("the response is closed")
        chunks: list[bytes] = []
        try:
            while True:
                chunk = await conn.read_chunk(self._read_timeout)
                if chunk is None:
                    break
                chunks.append(chunk)
        except BaseException as exc:
            self._discard(f"body not read to the end: {exc or type(exc).__name__}")
            raise
        content = self._content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._done()
        return content

    async def aclose(self) -> None:
        """Release the connection; one whose body is unread is closed (it is not clean)."""
        if self._conn is not None:
            self._discard("response closed before its body was read")

    def _done(self) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        if self._on_release is not None:
            self.close_reason = self._on_release(self._head)
            return
        if conn.finish_exchange(self._head):
            self._pool.release(conn)
        else:
            self.close_reason = conn.close_reason

    def _discard(self, reason: str) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        conn.abort(reason)
        self.close_reason = reason
        if self._on_release is not None:
            self._on_release(None)


class Client:
    """An async HTTP/1.1 client over a keep-alive connection pool.

    Use as ``async with Client() as client: r = await client.get(url)``.

    Args:
        headers: sent with every request (a request's own fields replace them by name).
        timeout: a :class:`Timeout`, or one number for every phase.
        max_connections / max_per_origin: the pool's limits.
        idle_timeout: the client's own limit for an idle connection.
        keep_alive: False sends ``Connection: close`` with every request.
        verify: verify TLS certificates against the system's CAs (default), or against
            the CAs in this PEM file; False only when asked.
        ssl_context: a context to use instead of the default one.
        trace: called with one line of text per connection event (new, reused, closed).
        pipeline: pipelining depth (requests in flight on one connection, RFC 9112
            §9.3.2): one number for every origin, or ``{"http://host:port": depth}``
            per origin. 0 or 1 (the default) turns it off.
        expect_continue: send ``Expect: 100-continue`` with bodies of at least this
            many bytes, and with streamed bodies (RFC 9110 §10.1.1); None (default) never.
            A request whose headers already carry the expectation is honoured too.
        continue_wait: seconds to wait for ``100 Continue`` before sending the body anyway.
    """

    def __init__(
        self,
        *,
        headers: HeaderArg = None,
        timeout: Timeout | float | None = None,
        max_connections: int = 100,
        max_per_origin: int = 10,
        idle_timeout: float = 60.0,
        keep_alive: bool = True,
        verify: bool | str = True,
        ssl_context: ssl.SSLContext | None = None,
        trace: Callable[[str], None] | None = None,
        pipeline: int | Mapping[str, int] = 0,
        expect_continue: int | None = None,
        continue_wait: float = 1.0,
    ) -> None:
        self.headers = _headers(headers)
        self.timeout = Timeout() if timeout is None else Timeout.of(timeout)
        if ssl_context is None and isinstance(verify, str):
            ssl_context = default_ssl_context(verify=verify)  # a bad CA file fails here
        self._trace = trace
        self.pool = Pool(
            max_connections=max_connections,
            max_per_origin=max_per_origin,
            idle_timeout=idle_timeout,
            keep_alive=keep_alive,
            ssl_context=ssl_context,  # else the pool makes the default one on first https
            verify=verify,
            trace=trace,
        )
        self._pipeline_depth: dict[Origin, int] = {}
        self._pipeline_default = 0
        if isinstance(pipeline, int):
            self._pipeline_default = pipeline
        else:
            for origin_url, depth in pipeline.items():
                self._pipeline_depth[_parse_url(origin_url)[0]] = depth
        self._pipelines: dict[Origin, Pipeline] = {}
        #: Requests without headers or body of their own, built once per
        #: (method, target, Host) while ``self.headers`` stays the same object.
        self._plain: dict[tuple[str, bytes, bytes], Request] = {}
        self._plain_for = self.headers
        self.expect_continue = expect_continue
        self.continue_wait = continue_wait

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.pool.aclose()

    # --- convenience --------------------------------------------------------------------------

    async def get(self, url: str, **kwargs: object) -> Response:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **kwargs)  # type: ignore[arg-type]

    async def head(self, url: str, **kwargs: object) -> Response:
        """``request("HEAD", url, ...)``."""
        return await self.request("HEAD", url, **kwargs)  # type: ignore[arg-type]

    async def post(self, url: str, **kwargs: object) -> Response:
        """``request("POST", url, ...)``."""
        return await self.request("POST", url, **kwargs)  # type: ignore[arg-type]

    async def put(self, url: str, **kwargs: object) -> Response:
        """``request("PUT", url, ...)``."""
        return await self.request("PUT", url, **kwargs)  # type: ignore[arg-type]

    async def delete(self, url: str, **kwargs: object) -> Response:
        """``request("DELETE", url, ...)``."""
        return await self.request("DELETE", url, **kwargs)  # type: ignore[arg-type]

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: HeaderArg = None,
        content: Body = None,
        timeout: Timeout | float | None = None,
    ) -> Response:
        """Send a request and read the whole response body.

        Raises:
            ClientError: a subclass naming the cause (timeouts, connect errors,
                ``ServerDisconnected``, ``ServerClosedIdle``).
            RemoteProtocolError: the server sent invalid HTTP.
            HopByHopInHeaders: *headers* holds a hop-by-hop field that its
                ``Connection`` field does not list (RFC 9110 §7.6.1).
        """
        response = await self.send(method, url, headers=headers, content=content, timeout=timeout)
        await response.aread()
        return response

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: HeaderArg = None,
        content: Body = None,
        timeout: Timeout | float | None = None,
    ) -> AsyncIterator[Response]:
        """Send a request; yield the response with its body unread (``aiter_bytes``)."""
        response = await self.send(method, url, headers=headers, content=content, timeout=timeout)
        try:
            yield response
        finally:
            await response.aclose()

    # --- the exchange -------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: HeaderArg = None,
        content: Body = None,
        timeout: Timeout | float | None = None,
    ) -> Response:
        """Send a request; return the response once its head arrived (body unread).

        Raises: as :meth:`request`.
        """
        t = self.timeout if timeout is None else Timeout.of(timeout)
        origin, target, host = _parse_url(url)
        if headers is None and content is None:
            request = self._plain_request(method, target, host)
        else:
            request = self._build_request(method, target, host, headers, content)
        replayable = content is None or isinstance(content, bytes | bytearray | memoryview)
        depth = self._pipeline_depth.get(origin, self._pipeline_default)
        if depth > 1:
            return await self._send_pipelined(origin, depth, request, content, replayable, url, t)
        # The attempt's books are opened at the first failure: the request that succeeds
        # at once (nearly every one) pays nothing for them.
        attempt: Attempt | None = None
        pool = self.pool
        while True:
            fresh = attempt is not None
            conn = None if fresh else pool.acquire_idle(origin)
            if conn is not None:
                reused = True
            else:
                conn, reused = await pool.acquire(
                    origin, pool_timeout=t.pool, connect_timeout=t.connect, fresh=fresh
                )
            if self._trace is not None:
                self._trace(
                    f"connection #{conn.id} {'reused' if reused else 'new'} for {method} {url}"
                )
                self._trace_request(request)
            try:
                await conn.send_request(request, content, t.write, self.continue_wait)
                head = await conn.read_response_head(t.read)
            except BaseException as exc:
                if attempt is None:
                    attempt = Attempt(request, replayable=replayable, max_sends=CLIENT_MAX_SENDS)
                attempt.begin(conn, reused)
                why = attempt.failed(exc, cause=_abort_cause(exc, method, url))
                if why is None:
                    if self._trace is not None:
                        self._trace(f"connection #{conn.id} failed ({describe(exc)}); "
                                    f"retrying {method} on a new connection")
                    continue
                if attempt.intact:
                    pool.give_back(conn)
                failure = _failure(attempt, exc, why, method, url, t)
                if failure is None:
                    raise
                raise failure from (None if isinstance(exc, ClientTimeout) else exc)
            return Response(
                head,
                method=method,
                url=url,
                reused=reused,
                conn=conn,
                pool=self.pool,
                read_timeout=t.read,
            )

    async def _send_pipelined(
        self,
        origin: Origin,
        depth: int,
        request: Request,
        content: Body,
        replayable: bool,
        url: str,
        t: Timeout,
    ) -> Response:
        pipe = self._pipelines.get(origin)
        if pipe is None:
            pipe = self._pipelines[origin] = Pipeline(self.pool, origin, depth, self._trace)
        try:
            lane, head, reused, turn = await pipe.send(
                request, content, replayable, url=url, pool_timeout=t.pool,
                connect_timeout=t.connect, write_timeout=t.write, read_timeout=t.read,
            )
        except ClientTimeout as exc:
            raise type(exc)(
                f"{request.method.decode()} {url}: {_timeout_text(exc, t)}"
            ) from None
        return Response(
            head,
            method=request.method.decode(),
            url=url,
            reused=reused,
            conn=lane.conn,
            pool=self.pool,
            read_timeout=t.read,
            on_release=lambda done: lane.leave(turn, done),
        )

    def _trace_request(self, request: Request) -> None:
        assert self._trace is not None
        self._trace(f"> {request.method.decode()} {request.target.decode()} HTTP/1.1")
        for name, value in [*request.headers, *request.connection.fields]:
            self._trace(f"> {name.decode('latin-1')}: {value.decode('latin-1')}")

    def _plain_request(self, method: str, target: bytes, host: bytes) -> Request:
        """:meth:`_build_request` without headers or body of the caller's, memoised.

        The core never changes a Request it sends, so one object serves every send.
        """
        if self._plain_for is not self.headers:  # the default headers were replaced
            self._plain = {}
            self._plain_for = self.headers
        key = (method, target, host)
        request = self._plain.get(key)
        if request is None:
            request = self._build_request(method, target, host, None, None)
            if len(self._plain) >= _MEMO_SIZE:
                self._plain.clear()
            self._plain[key] = request
        return request

    def _build_request(
        self, method: str, target: bytes, host: bytes, headers: HeaderArg, content: Body
    ) -> Request:
        user = _headers(headers)
        given = {f[0] for f in user.fields}
        fields = [f for f in self.headers.fields if f[0] not in given] + list(user.fields)
        e2e, conn = split_headers(Headers.from_parsed(fields))
        conn = _listed_only(conn)
        lengths = e2e.get_all(b"content-length")
        if not any(f[0] == b"host" for f in e2e.fields):
            e2e = Headers.from_parsed([(b"host", b"Host", host), *e2e.fields])
        e2e = e2e.without(_FRAMING)
        if self._wants_continue(content) and b"expect" not in e2e:
            e2e = e2e.with_field(b"Expect", b"100-continue")
        if isinstance(content, bytes | bytearray | memoryview):
            if content or method not in ("GET", "HEAD", "DELETE", "OPTIONS", "TRACE"):
                e2e = e2e.with_field(b"Content-Length", b"%d" % len(content))
        elif content is not None:
            if lengths:
                e2e = e2e.with_field(b"Content-Length", lengths[-1])
            else:
                conn = ConnectionInfo(conn.options, [*conn.fields, (b"Transfer-Encoding",
                                                                    b"chunked")])
        return Request(method.encode("ascii"), target, e2e, conn, b"1.1")


    def _wants_continue(self, content: Body) -> bool:
        """Whether to ask for ``100 Continue`` before sending *content* (RFC 9110 §10.1.1)."""
        threshold = self.expect_continue
        if threshold is None or content is None:
            return False
        if isinstance(content, bytes | bytearray | memoryview):
            return len(content) >= threshold and len(content) > 0
        return True


def _listed_only(conn: ConnectionInfo) -> ConnectionInfo:
    """Keep hop-by-hop fields the caller listed in ``Connection``; reject the rest.

    The issue: never send a hop-by-hop field the caller passed by mistake
    (RFC 9110 §7.6.1). ``Connection`` itself becomes options the writer lists.

    Raises:
        HopByHopInHeaders: a hop-by-hop field not named by ``Connection``.
    """
    if not conn.fields:
        return conn
    kept = []
    for lname, raw, value in conn.fields.fields:
        if lname == b"connection":
            continue
        if lname not in conn.options:
            raise HopByHopInHeaders(
                f"{raw.decode('latin-1')!r} is hop-by-hop (RFC 9110 §7.6.1): list it in "
                "Connection to send it on purpose, or drop it"
            )
        kept.append((raw, value))
    return ConnectionInfo(conn.options, kept)


def _headers(headers: HeaderArg) -> Headers:
    if headers is None:
        return Headers()
    if isinstance(headers, Headers):
        return headers
    if isinstance(headers, dict):
        return Headers(list(headers.items()))
    return Headers(headers)


def _parse_url(url: str) -> tuple[Origin, bytes, bytes]:
    """Split a URL into the origin, the request-target and the Host value (RFC 9112 §3.2).

    Memoised: a client usually asks for the same few URLs again and again.
    """
    parsed = _URLS.get(url)
    if parsed is None:
        parsed = _split_url(url)
        if len(_URLS) >= _MEMO_SIZE:
            _URLS.clear()
        _URLS[url] = parsed
    return parsed


def _split_url(url: str) -> tuple[Origin, bytes, bytes]:
    try:
        parts = urlsplit(url)
        port_given = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", a port out of range or not a number
        raise ClientError(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ClientError(f"unsupported URL scheme in {url!r}: use http or https")
    host = parts.hostname
    if not host:
        raise ClientError(f"no host in {url!r}")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ClientError(f"invalid host name in {url!r}: {exc}") from None
    port = port_given or _DEFAULT_PORTS[scheme]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # A request-target is visible ASCII only (RFC 9112 §3.2, RFC 3986 §2.1): send
    # spaces, controls and non-ASCII as UTF-8 percent-encoded octets; keep the rest.
    target = quote(target, safe=_VISIBLE_ASCII)
    shown = f"[{host}]" if ":" in host else host
    host_value = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    return (scheme, host, port), target.encode("ascii"), host_value.encode("ascii")


def _timeout_text(exc: ClientTimeout, t: Timeout) -> str:
    if isinstance(exc, ReadTimeout):
        return f"no response within the read timeout ({t.read} s)"
    if isinstance(exc, WriteTimeout):
        return f"the server did not take the request within the write timeout ({t.write} s)"
    return str(exc) or type(exc).__name__


def _abort_cause(exc: BaseException, method: str, url: str) -> str | None:
    """The ``close_reason`` for a connection whose exchange raised *exc* (None: *exc*)."""
    if isinstance(exc, ClientTimeout):
        return f"{type(exc).__name__} during {method} {url}"
    if not isinstance(exc, Exception):
        return "request cancelled"
    return None


def _failure(
    attempt: Attempt, exc: BaseException, why: str, method: str, url: str, t: Timeout
) -> BaseException | None:
    """The error to raise for a request that is not sent again; None: *exc* itself.

    The keep-alive race that cannot be retried is :class:`ServerClosedIdle`, naming
    the connection and *why* (RFC 9112 §9.3.1); timeouts and disconnects name the
    request; anything else (a malformed answer, a local fault) goes up unchanged.
    """
    error = attempt.error
    if isinstance(exc, ClientTimeout):
        return type(exc)(f"{method} {url}: {_timeout_text(exc, t)}")
    cause = describe(exc)
    if attempt.reused and isinstance(error, NothingWritten | ClosedBeforeResponse):
        conn = attempt.conn
        assert conn is not None
        return ServerClosedIdle(
            f"{method} {url}: the server closed reused connection #{conn.id} before "
            f"answering ({cause}); not retried: {why}"
        )
    if isinstance(exc, OSError) and isinstance(error, ServerDisconnected):
        return type(error)(f"{method} {url}: {cause}")
    return None
