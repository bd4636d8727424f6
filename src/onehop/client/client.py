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

import codecs
import json as jsonlib
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote, urlsplit

from onehop.client.connection import HTTPConnection, Origin
from onehop.client.errors import (
    ClientError,
    ClientTimeout,
    ClosedBeforeResponse,
    HTTPStatusError,
    InvalidURL,
    NothingWritten,
    ReadTimeout,
    RedirectBodyNotReplayable,
    ServerClosedIdle,
    ServerDisconnected,
    TooManyRedirects,
    UnsupportedScheme,
    WriteTimeout,
)
from onehop.client.exchange import CLIENT_MAX_SENDS, Attempt, describe
from onehop.client.headers import HeaderMap
from onehop.client.pipeline import Pipeline
from onehop.client.pool import Pool, default_ssl_context
from onehop.client.redirects import next_hop
from onehop.core import ConnectionInfo, EndOfMessage, Headers, Request, split_headers
from onehop.core import Response as CoreResponse
from onehop.errors import HopByHopInHeaders

HeaderArg = (
    Headers | Mapping[str, str] | list[tuple[str, str]] | list[tuple[bytes, bytes]] | None
)
Body = bytes | AsyncIterable[bytes] | None
_NO_BODY_METHODS: Final = ("GET", "HEAD", "DELETE", "OPTIONS", "TRACE")
_REASONS: Final = {1: "Informational", 3: "Redirect", 4: "Client error", 5: "Server error"}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: Headers the client computes: a caller's copy keeps its place with the true value.
_FRAMING: Final = frozenset({b"content-length"})
#: Entries kept by the URL and request memos before they start over.
_MEMO_SIZE: Final = 512
_URLS: dict[str, tuple[Origin, bytes, bytes]] = {}
_VISIBLE_ASCII: Final = "".join(map(chr, range(0x21, 0x7F)))
#: No field dropped (a request that did not come from a redirect).
_KEEP_ALL: Final[frozenset[bytes]] = frozenset()


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

    ``headers`` is a :class:`~onehop.client.headers.HeaderMap` (read as
    ``httpx.Headers`` is: ``r.headers["content-type"]``, ``.get``, ``.get_list``,
    ``.multi_items()``) that never holds hop-by-hop fields; ``connection`` has
    the ``Connection`` options and connection-specific fields (RFC 9110 §7.6.1).
    ``reused`` tells whether the request went over a connection that carried
    an earlier exchange. The body is read with :meth:`aiter_bytes` or
    :meth:`aread`; :meth:`aclose` gives the connection back (or closes it
    if the body was not read to its end). ``history`` holds the redirects
    followed to reach this response, oldest first.
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
        started: float | None = None,
    ) -> None:
        self.status_code = head.status_code
        self.headers = HeaderMap(head.headers)
        self.connection: ConnectionInfo = head.connection
        self.method = method
        self.url = url
        self.reused = reused
        self.connection_id = conn.id
        #: Why the connection was closed after this response, or None if kept.
        self.close_reason: str | None = None
        #: The redirect responses followed to reach this one, oldest first (bodies read).
        self.history: list[Response] = []
        self._head = head
        self._conn: HTTPConnection | None = conn
        self._pool = pool
        self._read_timeout = read_timeout
        self._content: bytes | None = None
        #: A pipelined exchange hands the connection back through its lane instead.
        self._on_release = on_release
        self._started = started
        #: When the body ended or the connection was given up (perf_counter).
        self._ended: float | None = None
        self._encoding: str | None = None

    @property
    def reason(self) -> str:
        """The reason phrase (decoded as Latin-1)."""
        return self._head.reason.decode("latin-1")

    @property
    def reason_phrase(self) -> str:
        """The reason phrase (httpx's name for :attr:`reason`)."""
        return self.reason

    @property
    def http_version(self) -> str:
        """``"1.1"`` or ``"1.0"``."""
        return self._head.http_version.decode("ascii")

    @property
    def status(self) -> int:
        """The status code (alias of ``status_code``)."""
        return self.status_code

    @property
    def elapsed(self) -> timedelta:
        """From sending the request to the end of the body (or until now, while it is
        read), as httpx measures it; a redirect's history is not included.

        Raises:
            ClientError: the response was not made by :class:`Client` (no start time).
        """
        if self._started is None:
            raise ClientError("no start time: this response was not sent by a Client")
        end = self._ended if self._ended is not None else time.perf_counter()
        return timedelta(seconds=end - self._started)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason}]>"

    # --- status classes -----------------------------------------------------------------------

    @property
    def is_success(self) -> bool:
        """A 2xx status (RFC 9110 §15.3)."""
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        """A 3xx status with a ``Location`` field: one :meth:`Client.send` could follow."""
        return 300 <= self.status_code < 400 and "location" in self.headers

    @property
    def is_client_error(self) -> bool:
        """A 4xx status (RFC 9110 §15.5)."""
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        """A 5xx status (RFC 9110 §15.6)."""
        return 500 <= self.status_code < 600

    @property
    def is_error(self) -> bool:
        """A 4xx or 5xx status."""
        return 400 <= self.status_code < 600

    def raise_for_status(self) -> Response:
        """Return the response if its status is 2xx; else raise, as httpx does.

        Raises:
            HTTPStatusError: any other status (1xx, 3xx, 4xx, 5xx), with ``response``
                set and a message naming the status and the URL.
        """
        if self.is_success:
            return self
        kind = _REASONS.get(self.status_code // 100, "Unexpected status")
        message = f"{kind} '{self.status_code} {self.reason}' for url '{self.url}'"
        location = self.headers.get("location")
        if location is not None and 300 <= self.status_code < 400:
            message += f" (Location: {location})"
        raise HTTPStatusError(message, response=self)

    # --- the body -----------------------------------------------------------------------------

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
    def charset_encoding(self) -> str | None:
        """The ``charset`` parameter of ``Content-Type`` (RFC 9110 §8.3.2), or None."""
        return _charset(self.headers.get("content-type"))

    @property
    def encoding(self) -> str:
        """How :attr:`text` decodes the body: the declared ``charset`` if Python knows
        it, else UTF-8 (httpx's default; RFC 9110 dropped HTTP/1.1's ISO-8859-1
        default for text). Settable, before :attr:`text` is read."""
        if self._encoding is None:
            declared = self.charset_encoding
            encoding = "utf-8"
            if declared is not None:
                with suppress(LookupError):
                    encoding = codecs.lookup(declared).name
            self._encoding = encoding
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding = value

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding` (invalid bytes replaced).

        Raises:
            ClientError: the body was not read yet.
        """
        return self.content.decode(self.encoding, "replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON (RFC 8259; UTF-8, -16 or -32 detected by ``json.loads``).

        Raises:
            ClientError: the body was not read yet.
            json.JSONDecodeError: the body is not JSON.
        """
        return jsonlib.loads(self.content, **kwargs)

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

    def read_ready(self) -> tuple[list[bytes], bool]:
        """The body pieces already received, without waiting, and whether the body ended
        (then the connection is released, as by :meth:`aread`).

        For a caller on another thread (the sync httpx transport): one hop to the
        loop gets everything there is, often the whole body with the head.

        Raises: as :meth:`aiter_bytes`.
        """
        conn = self._conn
        if conn is None:
            return [], True
        pieces: list[bytes] = []
        try:
            while True:
                event = conn.read_body_event_nowait()
                if event is None:
                    return pieces, False
                if isinstance(event, EndOfMessage):
                    self._done()
                    return pieces, True
                pieces.append(event)
        except BaseException as exc:
            self._discard(f"body not read to the end: {exc or type(exc).__name__}")
            raise

    async def aread_some(self) -> tuple[list[bytes], bool]:
        """Wait for the next piece of the body, then as :meth:`read_ready`.

        Raises: as :meth:`aiter_bytes`.
        """
        conn = self._conn
        if conn is None:
            return [], True
        try:
            event = await conn.read_body_event(self._read_timeout)
        except BaseException as exc:
            self._discard(f"body not read to the end: {exc or type(exc).__name__}")
            raise
        if isinstance(event, EndOfMessage):
            self._done()
            return [], True
        pieces, ended = self.read_ready()
        return [event, *pieces], ended

    @property
    def is_closed(self) -> bool:
        """Whether the connection was given back (body read to its end) or closed."""
        return self._conn is None

    async def aclose(self) -> None:
        """Release the connection; one whose body is unread is closed (it is not clean)."""
        if self._conn is not None:
            self._discard("response closed before its body was read")

    def _done(self) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        if self._started is not None:
            self._ended = time.perf_counter()
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
        if self._started is not None:
            self._ended = time.perf_counter()
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
        self.headers = _headers(headers)
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
            content, headers = _json_body(json, headers)
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
                url=url, origin=_parse_url(url)[0], new_origin_of=_origin_of,
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
        origin, target, host = _parse_url(url)
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
            if len(self._plain) >= _MEMO_SIZE:
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
        user = _headers(headers)
        given = {f[0] for f in user.fields}
        fields = [f for f in self.headers.fields if f[0] not in given] + list(user.fields)
        if drop:
            fields = [f for f in fields if f[0] not in drop]
        e2e, conn = split_headers(Headers.from_parsed(fields))
        conn = _listed_only(conn)
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
            e2e = _with_length_in_place(e2e, length)
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
    if isinstance(headers, HeaderMap):
        return headers.fields
    if isinstance(headers, Mapping):
        return Headers(list(headers.items()))
    return Headers(headers)


def _with_length_in_place(e2e: Headers, length: bytes) -> Headers:
    """*e2e* with its first ``Content-Length`` line set to *length* and any others gone."""
    fields: list[tuple[bytes, bytes, bytes]] = []
    placed = False
    for f in e2e.fields:
        if f[0] == b"content-length":
            if placed:
                continue
            placed = True
            f = (f[0], f[1], length)
        fields.append(f)
    return Headers.from_parsed(fields)


def _json_body(value: Any, headers: HeaderArg) -> tuple[bytes, HeaderArg]:
    """*value* as compact UTF-8 JSON (httpx's encoding), and *headers* with
    ``Content-Type: application/json`` unless they set a type (RFC 8259 §11).

    Raises:
        TypeError: *value* holds something JSON cannot encode (or NaN/Infinity,
            which are not JSON: RFC 8259 §6).
    """
    try:
        body = jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"),
                             allow_nan=False).encode("utf-8")
    except ValueError as exc:
        raise TypeError(f"cannot send as JSON: {exc}") from None
    fields = _headers(headers)
    if b"content-type" not in fields:
        fields = fields.with_field(b"Content-Type", b"application/json")
    return body, fields


def _charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a media type (RFC 9110 §8.3.1, §5.6.6), unquoted and
    lower-case (charset names are case-insensitive, RFC 9110 §8.3.2)."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, sep, value = param.partition("=")
        if sep and name.strip().lower() == "charset":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value.lower() or None
    return None


def _trace_head(trace: Callable[[str], None], head: CoreResponse) -> None:
    """A response head as ``< `` lines: status line, end-to-end fields, then the
    connection-specific ones (the core keeps them apart), then ``< ``."""
    trace(f"< HTTP/{head.http_version.decode()} {head.status_code} "
          f"{head.reason.decode('latin-1')}")
    for name, value in [*head.headers, *head.connection.fields]:
        trace(f"< {name.decode('latin-1')}: {value.decode('latin-1')}")
    trace("< ")


def _origin_of(url: str) -> Origin:
    return _parse_url(url)[0]


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
        raise InvalidURL(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsupportedScheme(f"unsupported URL scheme in {url!r}: use http or https")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"no host in {url!r}")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURL(f"invalid host name in {url!r}: {exc}") from None
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
