"""The pooled keep-alive HTTP/1.1 client (issue 4).

``Client`` lends connections from a per-origin pool, reuses them only while
clean and while the server allows (RFC 9112 §9.3, ``Keep-Alive`` hints), and
resends a request at most once, only as :func:`should_resend` decides from the
error's type (RFC 9112 §9.3.1, RFC 9110 §9.2.2).
"""

from typing import TYPE_CHECKING

from onehop.client.client import Client, Response, Timeout
from onehop.client.errors import (
    ClientClosed,
    ClientError,
    ClientTimeout,
    ClosedBeforeResponse,
    ConnectError,
    ConnectTimeout,
    NothingWritten,
    PipelinedRequestUnanswered,
    PoolTimeout,
    ReadTimeout,
    ServerClosedIdle,
    ServerDisconnected,
    WriteTimeout,
)
from onehop.client.exchange import should_resend
from onehop.client.pool import Pool
from onehop.client.retry import IDEMPOTENT_METHODS, is_retry_safe

if TYPE_CHECKING:
    from onehop.client.httpx_transport import HTTPXTransport

__all__ = [
    "IDEMPOTENT_METHODS",
    "Client",
    "ClientClosed",
    "ClientError",
    "ClientTimeout",
    "ClosedBeforeResponse",
    "ConnectError",
    "ConnectTimeout",
    "HTTPXTransport",
    "NothingWritten",
    "PipelinedRequestUnanswered",
    "Pool",
    "PoolTimeout",
    "ReadTimeout",
    "Response",
    "ServerClosedIdle",
    "ServerDisconnected",
    "Timeout",
    "WriteTimeout",
    "is_retry_safe",
    "should_resend",
]


def __getattr__(name: str) -> object:
    """Import ``HTTPXTransport`` (and so httpx, an optional extra) only when asked for."""
    if name == "HTTPXTransport":
        from onehop.client.httpx_transport import HTTPXTransport

        return HTTPXTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
