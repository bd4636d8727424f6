"""The pooled keep-alive HTTP/1.1 client (issue 4).

``Client`` lends connections from a per-origin pool, reuses them only while
clean and while the server allows (RFC 9112 §9.3, ``Keep-Alive`` hints), and
resends a request at most once, only as :func:`is_retry_safe` decides
(RFC 9112 §9.3.1).
"""

from typing import TYPE_CHECKING

from onehop.client.client import Client, Response, Timeout
from onehop.client.errors import (
    ClientClosed,
    ClientError,
    ClientTimeout,
    ConnectError,
    ConnectTimeout,
    PipelinedRequestUnanswered,
    PoolTimeout,
    ReadTimeout,
    ServerClosedIdle,
    ServerDisconnected,
    WriteTimeout,
)
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
    "ConnectError",
    "ConnectTimeout",
    "HTTPXTransport",
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
]


def __getattr__(name: str) -> object:
    """Import ``HTTPXTransport`` (and so httpx, an optional extra) only when asked for."""
    if name == "HTTPXTransport":
        from onehop.client.httpx_transport import HTTPXTransport

        return HTTPXTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
