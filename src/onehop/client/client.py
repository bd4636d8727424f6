"""The pooled HTTP/1.1 client (``Client``; its ``Response`` and ``Timeout`` are in
:mod:`onehop.client.response`).

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
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Final

from onehop.client.connection import Origin
from onehop.client.errors import (
    ClientTimeout,
    ClosedBeforeResponse,
    NothingWritten,
    ReadTimeout,
    RedirectBodyNotReplayable,
    ServerClosedIdle,
    ServerDisconnected,
    TooManyRedirects,
    WriteTimeout,
)
from onehop.client.exchange import CLIENT_MAX_SENDS, Attempt, describe
from onehop.client.message import (
    MEMO_SIZE,
    HeaderArg,
    header_fields,
    json_body,
    listed_only,
    origin_of,
    parse_url,
    with_length_in_place,
)
from onehop.client.pipeline import Pipeline
from onehop.client.pool import Pool, default_ssl_context
from onehop.client.redirects import next_hop
from onehop.client.response import Response, Timeout
from onehop.core import ConnectionInfo, Headers, Request, split_headers
from onehop.core import Response as CoreResponse

Body = bytes | AsyncIterable[bytes] | None
_NO_BODY_METHODS: Final = ("GET", "HEAD", "DELETE", "OPTIONS", "TRACE")
#: Headers the client computes: a caller's copy keeps its place with the true value.
_FRAMING: Final = frozenset({b"content-length"})
#: Entries kept by the URL and request memos before they start over.
#: No field dropped (a request that did not come from a redirect).
_KEEP_ALL: Final[frozenset[bytes]] = frozenset()


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
        trace: called with one line of text per connection event (new, reused, closed,
            redirect), and with each request head as sent (``> `` lines, byte for byte)
            and each response head (``< `` lines; connection-specific fields last).
        pipeline: pipelining depth (requests in flight on one connection, RFC 9112
            §9.3.2): one number for every origin, or ``{"http://host:port": depth}``
            per origin. 0 or 1 (the default) turns it off.
        expect_continue: send ``Expect: 100-continue`` with bodies of at least this
            many bytes, and with streamed bodies (RFC 9110 §10.1.1); None (default) never.
            A request whose headers already carry the expectation is honoured too.
        continue_wait: seconds to wait for ``100 Continue`` before sending the body anyway.
        follow_redirects: follow 301, 302, 303, 307 and 308 answers (default False, as
            httpx and curl); a request may say otherwise. See :mod:`onehop.client.redirects`.
        max_redirects: redirects followed for one request before :class:`TooManyRedirects`
            (20, httpx's default).
        http_version: ``"1.1"`` (default) or ``"1.0"``: the version of every request.
            An HTTP/1.0 request asks to keep the connection with ``Connection:
            keep-alive`` (RFC 9112 §9.3, RFC 7230 §A.1.2) unless *keep_alive* is False,
            and cannot stream a body of unknown length (no chunked coding, RFC 9112 §7.1).
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
        follow_redirects: bool = False,
        max_redirects: int = 20,
        http_version: str = "1.1",
    ) -> None:
        if http_version not in ("1.0", "1.1"):
            raise ValueError(f"http_version must be '1.0' or '1.1', not {http_version!r}")
        if max_redirects < 0:
            raise ValueError("max_redirects must be 0 or more")
        self.headers = header_fields(headers)
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.http_version = http_version
        self._version = http_version.encode("ascii")
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
                self._pipeline_depth[parse_url(origin_url)[0]] = depth
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

    async def get(self, url: str, **kwargs: Any) -> Response:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> Response:
        """``request("HEAD", url, ...)``."""
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str, **kwargs: Any) -> Response:
        """``request("OPTIONS", url, ...)``."""
        return await self.request("OPTIONS", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response:
        """``request("POST", url, ...)``."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Response:
        """``request("PUT", url, ...)``."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Response:
        """``request("PATCH", url, ...)``."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Response:
        """``request("DELETE", url, ...)``."""
        return await self.request("DELETE", url, **kwargs)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: HeaderArg = None,
        content: Body = None,
        json: Any = None,
        timeout: Timeout | float | None = None,
        follow_redirects: bool | None = None,
    ) -> Response:
        """Send a request and read the whole response body.

        *json* (instead of *content*) sends that value as compact UTF-8 JSON with
        ``Content-Type: application/json`` unless *headers* set one (as httpx does).
        *follow_redirects* overrides the client's setting for this request.

        Raises:
            ClientError: a subclass naming the cause (timeouts, connect errors,
                ``ServerDisconnected``, ``ServerClosedIdle``, ``InvalidURL``,
                ``TooManyRedirects``, ``RedirectBodyNotReplayable``).
            RemoteProtocolError: the server sent invalid HTTP.
            HopByHopInHeaders: *headers* holds a hop-by-hop field that its
                ``Connection`` field does not list (RFC 9110 §7.6.1).
            TypeError: both *content* and *json*, or a *json* value JSON cannot encode.
        """
        response = await self.send(method, url, headers=headers, content=content, json=json,
                                   timeout=timeout, follow_redirects=follow_redirects)
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
        json: Any = None,
        timeout: Timeout | float | None = None,
        follow_redirects: bool | None = None,
    ) -> AsyncIterator[Response]:
        """Send a request; yield the response with its body unread (``aiter_bytes``)."""
        response = await self.send(method, url, headers=headers, content=content, json=json,
                                   timeout=timeout, follow_redirects=follow_redirects)
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
        json: Any = None,
        timeout: Timeout | float | None = None,
        follow_redirects: bool | None = None,
    ) -> Response:
        """Send a request; return the response once its head arrived (body unread).

        When redirects are followed, each redirect's body is read (so its connection
        can be reused) and the response kept in the final one's ``history``.

        Raises: as :meth:`request`.
        """
        if json is not None:
            if content is not None:
                raise TypeError("pass content or json, not both")
            content, headers = json_body(json, headers)
        response = await self._send_one(method, url, headers, content, timeout, _KEEP_ALL)
        follow = self.follow_redirects if follow_redirects is None else follow_redirects
        if not follow or response.status_code < 300 or response.status_code >= 400:
            return response
        return await self._follow(response, method, url, headers, content, timeout)

    async def _follow(
        self,
        response: Response,
        method: str,
        url: str,
        headers: HeaderArg,
        content: Body,
        timeout: Timeout | float | None,
    ) -> Response:
        """Follow *response*'s redirects (:mod:`onehop.client.redirects`) to the final one.

        Raises:
            TooManyRedirects: more than ``max_redirects`` hops.
            RedirectBodyNotReplayable: a 307/308 for a request whose body was a stream.
        """
        history: list[Response] = []
        drop: frozenset[bytes] = _KEEP_ALL
        replayable = content is None or isinstance(content, bytes | bytearray | memoryview)
        while True:
            hop = next_hop(
                response.status_code, response.headers.get("location"), method=method,
                url=url, origin=parse_url(url)[0], new_origin_of=origin_of,
            )
            if hop is None:
                response.history = history
                return response
            await response.aread()  # (read, not dropped: the connection stays reusable)
            response.history = list(history)
            if len(history) >= self.max_redirects:
                raise TooManyRedirects(
                    f"{method} {url}: more than {self.max_redirects} redirects "
                    f"(RFC 9110 §15.4), the last to {hop.url}",
                    response=response,
                )
            if hop.keep_body and not replayable:
                raise RedirectBodyNotReplayable(
                    f"{method} {url}: {response.status_code} asks for the request again at "
                    f"{hop.url} with its body, but the body was a stream already sent",
                    response=response,
                )
            history.append(response)
            if self._trace is not None:
                self._trace(f"{response.status_code} redirect: {hop.method} {hop.url}")
            if not hop.keep_body:
                content = None
            method, url, drop = hop.method, hop.url, drop | hop.drop
            response = await self._send_one(method, url, headers, content, timeout, drop)

    async def _send_one(
        self,
        method: str,
        url: str,
        headers: HeaderArg,
        content: Body,
        timeout: Timeout | float | None,
        drop: frozenset[bytes],
    ) -> Response:
        """One exchange, resent at most once as :func:`should_resend` decides."""
        started = time.perf_counter()
        t = self.timeout if timeout is None else Timeout.of(timeout)
        origin, target, host = parse_url(url)
        if headers is None and content is None and not drop:
            request = self._plain_request(method, target, host)
        else:
            request = self._build_request(method, target, host, headers, content, drop)
        replayable = content is None or isinstance(content, bytes | bytearray | memoryview)
        depth = self._pipeline_depth.get(origin, self._pipeline_default)
        if depth > 1:
            return await self._send_pipelined(
                origin, depth, request, content, replayable, url, t, started
            )
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
            if self._trace is not None:
                _trace_head(self._trace, head)
            return Response(
                head,
                method=method,
                url=url,
                reused=reused,
                conn=conn,
                pool=self.pool,
                read_timeout=t.read,
                started=started,
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
        started: float,
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
        if self._trace is not None:
            _trace_head(self._trace, head)
        return Response(
            head,
            method=request.method.decode(),
            url=url,
            reused=reused,
            conn=lane.conn,
            pool=self.pool,
            read_timeout=t.read,
            on_release=lambda done: lane.leave(turn, done),
            started=started,
        )

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
            if len(self._plain) >= MEMO_SIZE:
                self._plain.clear()
            self._plain[key] = request
        return request

    def _build_request(
        self,
        method: str,
        target: bytes,
        host: bytes,
        headers: HeaderArg,
        content: Body,
        drop: frozenset[bytes] = _KEEP_ALL,
    ) -> Request:
        """The request to send: ``Host`` (the caller's, else from the URL) first, as RFC
        9112 §3.2 asks; the client's default fields the caller did not give, then the
        caller's, in order; then the framing.

        The client writes ``Content-Length`` itself: where the caller put one it keeps
        that place with the true length (so a caller can order fields as another
        client would), else it comes last. *drop* names fields not to send at all
        (a redirect's: credentials to another origin, a dropped body's fields).
        """
        user = header_fields(headers)
        given = {f[0] for f in user.fields}
        fields = [f for f in self.headers.fields if f[0] not in given] + list(user.fields)
        if drop:
            fields = [f for f in fields if f[0] not in drop]
        e2e, conn = split_headers(Headers.from_parsed(fields))
        conn = listed_only(conn)
        lengths = e2e.get_all(b"content-length")
        # RFC 9112 §3.2: a user agent SHOULD send Host as the first field line.
        if not any(f[0] == b"host" for f in e2e.fields):
            e2e = Headers.from_parsed([(b"host", b"Host", host), *e2e.fields])
        elif e2e.fields[0][0] != b"host":
            e2e = Headers.from_parsed([f for f in e2e.fields if f[0] == b"host"]
                                   + [f for f in e2e.fields if f[0] != b"host"])
        length: bytes | None = None
        if isinstance(content, bytes | bytearray | memoryview):
            if content or method not in _NO_BODY_METHODS:
                length = b"%d" % len(content)
        elif content is not None and lengths:
            length = lengths[-1]
        if length is not None and lengths:
            e2e = with_length_in_place(e2e, length)
        else:
            e2e = e2e.without(_FRAMING)
        if self._wants_continue(content) and b"expect" not in e2e:
            e2e = e2e.with_field(b"Expect", b"100-continue")
        if length is not None and not lengths:
            e2e = e2e.with_field(b"Content-Length", length)
        elif content is not None and length is None and not isinstance(
                content, bytes | bytearray | memoryview):
            conn = ConnectionInfo(conn.options, [*conn.fields, (b"Transfer-Encoding",
                                                                b"chunked")])
        return Request(method.encode("ascii"), target, e2e, conn, self._version)


    def _wants_continue(self, content: Body) -> bool:
        """Whether to ask for ``100 Continue`` before sending *content* (RFC 9110 §10.1.1)."""
        threshold = self.expect_continue
        if threshold is None or content is None:
            return False
        if isinstance(content, bytes | bytearray | memoryview):
            return len(content) >= threshold and len(content) > 0
        return True


def _trace_head(trace: Callable[[str], None], head: CoreResponse) -> None:
    """A response head as ``< `` lines: status line, end-to-end fields, then the
    connection-specific ones (the core keeps them apart), then ``< ``."""
    trace(f"< HTTP/{head.http_version.decode()} {head.status_code} "
          f"{head.reason.decode('latin-1')}")
    for name, value in [*head.headers, *head.connection.fields]:
        trace(f"< {name.decode('latin-1')}: {value.decode('latin-1')}")
    trace("< ")


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
