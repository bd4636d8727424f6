"""The pooled keep-alive HTTP/1.1 client (issue 4).

``Client`` lends connections from a per-origin pool, reuses them only while
clean and while the server allows (RFC 9112 §9.3, ``Keep-Alive`` hints), and
resends a request at most once, only as :func:`should_resend` decides from the
error's type (RFC 9112 §9.3.1, RFC 9110 §9.2.2). Its surface reads like httpx's:
``r.headers["content-type"]`` (:class:`HeaderMap`), ``json=``, ``.json()``,
``.text`` in the declared charset, ``raise_for_status()``, ``follow_redirects``
with a ``history``; ``HTTPXTransport`` and ``SyncHTTPXTransport`` put httpx's
``AsyncClient`` and ``Client`` on the same pool.
"""

from typing import TYPE_CHECKING

from onehop.client.client import Client
from onehop.client.errors import (
    ClientClosed,
    ClientError,
    ClientTimeout,
    ClosedBeforeResponse,
    ConnectError,
    ConnectTimeout,
    HTTPStatusError,
    InvalidURL,
    NothingWritten,
    PipelinedRequestUnanswered,
    PoolTimeout,
    ReadTimeout,
    RedirectBodyNotReplayable,
    ServerClosedIdle,
    ServerDisconnected,
    TooManyRedirects,
    UnsupportedScheme,
    WriteTimeout,
)
from onehop.client.exchange import should_resend
from onehop.client.headers import HeaderMap
from onehop.client.pool import Pool
from onehop.client.response import Response, Timeout
from onehop.client.retry import IDEMPOTENT_METHODS, is_retry_safe

if TYPE_CHECKING:
    from onehop.client.httpx_transport import HTTPXTransport, SyncHTTPXTransport

__all__ = [
    "IDEMPOTENT_METHODS",
    "Client",
    "ClientClosed",
    "ClientError",
    "ClientTimeout",
    "ClosedBeforeResponse",
    "ConnectError",
    "ConnectTimeout",
    "HTTPStatusError",
    "HTTPXTransport",
    "HeaderMap",
    "InvalidURL",
    "NothingWritten",
    "PipelinedRequestUnanswered",
    "Pool",
    "PoolTimeout",
    "ReadTimeout",
    "RedirectBodyNotReplayable",
    "Response",
    "ServerClosedIdle",
    "ServerDisconnected",
    "SyncHTTPXTransport",
    "Timeout",
    "TooManyRedirects",
    "UnsupportedScheme",
    "WriteTimeout",
    "is_retry_safe",
    "should_resend",
]


def __getattr__(name: str) -> object:
    """Import the httpx transports (and so httpx, an optional extra) only when asked for."""
    if name in ("HTTPXTransport", "SyncHTTPXTransport"):
        from onehop.client import httpx_transport

        return getattr(httpx_transport, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
