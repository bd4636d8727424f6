"""A response as the client hands it over (``Response``), and the timeouts (``Timeout``).

``Response`` reads as httpx's: a case-insensitive ``headers`` mapping of the end-to-end
fields (the connection part apart, RFC 9110 §7.6.1), ``text`` in the declared charset,
``json()``, ``raise_for_status()``, the redirect ``history``; and onehop's own:
``reused``, ``connection``, ``close_reason``. Its body is read once, from the
connection the client lent it, which goes back to the pool at the end (or is closed if
the body was not read to its end).
"""

from __future__ import annotations

import codecs
import json as jsonlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from onehop.client.connection import HTTPConnection
from onehop.client.errors import ClientError, HTTPStatusError
from onehop.client.headers import HeaderMap
from onehop.client.pool import Pool
from onehop.core import ConnectionInfo, EndOfMessage
from onehop.core import Response as CoreResponse

_REASONS: Final = {1: "Informational", 3: "Redirect", 4: "Client error", 5: "Server error"}


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


