"""What turns a proxied exchange into a byte tunnel: CONNECT's rules, the 101 or 200 the
client gets, and the joining of the two connections (RFC 9110 §7.8, §9.3.6).

Both kinds go through the pool and the exchange like any request (hooks, pool
limits, back-off and ``Via`` apply); only their end differs: the client's serving
endpoint and the upstream connection both switch protocols and a
:class:`~onehop._aio.tunnel.Pipe` copies bytes between them from callbacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from onehop._aio.tunnel import Pipe
from onehop.core import ConnectionInfo, Headers, InformationalResponse, Request, Response
from onehop.proxy import hop
from onehop.proxy.forward import ForwardPolicy, split_authority

if TYPE_CHECKING:
    from onehop._aio.handlers import Endpoint
    from onehop.client.connection import HTTPConnection


class ConnectRefused(Exception):
    """A CONNECT the proxy will not serve: answer ``status`` (``close`` when asked)."""

    def __init__(self, status: int, text: str, *, close: bool = False) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.close = close


def connect_target(request: Request, forward: ForwardPolicy | None) -> tuple[str, int]:
    """The host and port a CONNECT asks for, if this proxy may open them.

    Raises:
        ConnectRefused: 405 (not a forward proxy), 400 (content, or a bad authority:
            RFC 9110 §9.3.6, "A CONNECT request message does not have content"), 403
            (not allowed; the text names the rule that refused).
    """
    from onehop.proxy.forward import BadForwardTarget, ForwardDenied

    if forward is None:
        raise ConnectRefused(405, "Method Not Allowed: CONNECT is not served here (not a "
                                  "forward proxy)")
    if hop.request_has_body(request):
        raise ConnectRefused(400, "Bad Request: a CONNECT request has no content "
                                  "(RFC 9110 §9.3.6)", close=True)
    try:
        host, port = split_authority(request.target, 443)
        forward.check(host, port, connect=True)
    except BadForwardTarget as exc:
        raise ConnectRefused(400, f"Bad Request: {exc}") from None
    except ForwardDenied as exc:
        raise ConnectRefused(403, f"Forbidden: {exc}") from None
    return host, port


def switch_head(request: Request, switch: InformationalResponse | None, offer: bytes,
                policy: hop.HeaderPolicy) -> Response | InformationalResponse:
    """The head the client gets when the tunnel opens: the upstream's 101 (*switch*) with
    our ``Via`` and the protocol it chose (or the one offered), or CONNECT's 200."""
    via = hop.via(request.http_version, policy)
    if switch is None:
        return Response(200, Headers.from_parsed([via]))
    fields = [*switch.headers.fields, via]
    chosen = switch.connection.fields.get_all(b"upgrade") or [offer]
    return InformationalResponse(101, Headers.from_parsed(fields), switch.reason,
                                 ConnectionInfo(["upgrade"], [(b"Upgrade", chosen[0])]))


def join(endpoint: Endpoint, conn: HTTPConnection) -> Pipe:
    """Switch the client's endpoint and the upstream connection to raw bytes, joined."""
    pipe = Pipe(endpoint, conn)
    conn.switch(pipe.b)  # (the upstream's early bytes first: the 101 is already written)
    endpoint.switch(pipe.a)
    return pipe
