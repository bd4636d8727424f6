"""What a client request can fail with, one class per cause.

Transport failures are not protocol errors, so they hang off
:class:`~onehop.errors.OnehopError` directly; a peer that breaks HTTP raises the
core's :class:`~onehop.errors.RemoteProtocolError` subclasses unchanged.
"""

from __future__ import annotations

from typing import Protocol

from onehop.client.headers import HeaderMap
from onehop.errors import OnehopError


class Answer(Protocol):
    """What an error about a response carries of it (a :class:`onehop.client.Response`;
    a protocol here so that the errors module imports no client code back)."""

    status_code: int
    url: str
    headers: HeaderMap

    @property
    def reason_phrase(self) -> str: ...


class ClientError(OnehopError):
    """Base of every failure a :class:`~onehop.client.Client` raises on purpose."""


class ConnectError(ClientError):
    """The TCP or TLS connection could not be opened."""


class ClientTimeout(ClientError):
    """A timeout elapsed."""


class ConnectTimeout(ClientTimeout):
    """Opening the connection took longer than the connect timeout."""


class ReadTimeout(ClientTimeout):
    """The server sent nothing for longer than the read timeout."""


class WriteTimeout(ClientTimeout):
    """The server did not accept our bytes within the write timeout."""


class PoolTimeout(ClientTimeout):
    """No connection became available within the pool timeout."""


class ServerDisconnected(ClientError):
    """The server closed the connection before the response was complete (RFC 9112 §9.6)."""


class NothingWritten(ServerDisconnected):
    """The connection was already gone: not one byte of the request was written.

    Go's ``nothingWrittenError``. The server cannot have seen the request, so it
    may go out again on another connection whatever its method, if its body can
    be produced again: RFC 9110 §9.2.2 allows a retry when the client has "some
    means to detect that the original request was never applied".
    """


class ClosedBeforeResponse(ServerDisconnected):
    """The server closed or reset the connection after the request was written,
    before any byte of its response.

    On a reused connection this is the keep-alive race (RFC 9112 §9.3.1): the
    server closed while the connection was idle and never read the request, or
    read it and failed. Which, the client cannot tell, so only a request that is
    idempotent (RFC 9110 §9.2.2) or carries an ``Idempotency-Key`` may be resent.
    A pipelined request behind a response that ended the connection gets this
    too (RFC 9112 §9.3.2: it was never answered).
    """


class ServerClosedIdle(ServerDisconnected):
    """The server closed a reused connection before answering: the keep-alive race.

    Raised only when the request could not be retried (RFC 9112 §9.3.1).
    """


class PipelinedRequestUnanswered(ServerDisconnected):
    """The server closed, or answered ``close``, before answering a pipelined request.

    Raised only for a request that may not be resent (not idempotent, no
    ``Idempotency-Key``, or a streamed body): RFC 9112 §9.3.2 lets a client
    retry only the idempotent ones.
    """


class ClientClosed(ClientError):
    """The client was closed while the request waited or ran."""


class InvalidURL(ClientError):
    """The URL cannot be requested: unparsable, no host, a bad port or host name."""


class UnsupportedScheme(InvalidURL):
    """The URL's scheme is neither ``http`` nor ``https``."""


class TooManyRedirects(ClientError):
    """More redirects than ``max_redirects`` (RFC 9110 §15.4: a client SHOULD detect
    and intervene in cyclical redirections). ``response`` is the last redirect."""

    def __init__(self, message: str, *, response: Answer) -> None:
        super().__init__(message)
        self.response = response


class RedirectBodyNotReplayable(ClientError):
    """A 307 or 308 asks for the request again with its body (RFC 9110 §15.4.8,
    §15.4.9), but the body was a stream already sent. ``response`` is the redirect."""

    def __init__(self, message: str, *, response: Answer) -> None:
        super().__init__(message)
        self.response = response


class HTTPStatusError(ClientError):
    """:meth:`Response.raise_for_status` on a status that is not 2xx; ``response`` is it.

    A transport error it is not: the exchange itself went well.
    """

    def __init__(self, message: str, *, response: Answer) -> None:
        super().__init__(message)
        self.response = response
