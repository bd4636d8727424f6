"""What a client request can fail with, one class per cause.

Transport failures are not protocol errors, so they hang off
:class:`~onehop.errors.OnehopError` directly; a peer that breaks HTTP raises the
core's :class:`~onehop.errors.RemoteProtocolError` subclasses unchanged.
"""

from __future__ import annotations

from onehop.errors import OnehopError


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
