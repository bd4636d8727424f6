"""What turns a proxied exchange into a byte tunnel: CONNECT's rules, the 101 or 200 the
client gets, and the joining of the two connections (RFC 9110 §7.8, §9.3.6).

Both kinds go through the pool and the exchange like any request (hooks, pool
limits, back-off and ``Via`` apply); only their end differs: the client's serving
endpoint and the upstream connection both switch protocols and a
:class:`~onehop._aio.tunnel.Pipe` copies bytes between them from callbacks.

An HTTP/2 client's WebSocket (RFC 8441) is the same upgrade: its extended CONNECT
reaches the exchange as the GET with ``Upgrade: websocket`` it replaces
(:mod:`onehop._aio.h2fields`) and goes up as that, with a key of ours
(:func:`websocket_upgrade_fields`); the upstream's 101 becomes a 200 on the stream
(:func:`switch_head`), and the stream's DATA are the tunnel's bytes both ways.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from onehop._aio.tunnel import Pipe
from onehop.core import ConnectionInfo, Headers, InformationalResponse, Request, Response
from onehop.core.wskey import accept_key, new_key
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


class WrongAccept(Exception):
    """The upstream's 101 does not accept the WebSocket our key asked for (RFC 6455 §4.1):
    the HTTP/2 client, which never saw the key, gets a 502."""


def websocket_upgrade_fields(headers: Headers) -> Headers:
    """The fields of the HTTP/1.1 upgrade that forwards an HTTP/2 client's extended CONNECT
    (RFC 8441 §5): *headers* (the client's end-to-end fields, ``Sec-WebSocket-Protocol``
    and ``-Extensions`` among them) with a fresh ``Sec-WebSocket-Key`` of ours in place
    of any the client sent (it has none to send, and never sees the accept), and
    ``Sec-WebSocket-Version: 13`` when missing (RFC 6455 §4.1)."""
    fields = [f for f in headers.fields if f[0] != b"sec-websocket-key"]
    fields.append((b"sec-websocket-key", b"Sec-WebSocket-Key", new_key()))
    if not any(f[0] == b"sec-websocket-version" for f in fields):
        fields.append((b"sec-websocket-version", b"Sec-WebSocket-Version", b"13"))
    return Headers.from_parsed(fields)


def switch_head(request: Request, switch: InformationalResponse | None, offer: bytes,
                policy: hop.HeaderPolicy, sent: Request) -> Response | InformationalResponse:
    """The head the client gets when the tunnel opens: the upstream's 101 (*switch*) with
    our ``Via`` and the protocol it chose (or the one offered), or CONNECT's 200.

    An HTTP/2 client's WebSocket (an extended CONNECT, RFC 8441 §5) gets a 200 on its
    stream with the 101's end-to-end fields (the agreed subprotocol and extensions),
    once the 101's ``Sec-WebSocket-Accept`` answers the key *sent* upstream.

    Raises:
        WrongAccept: that accept is missing or wrong, or the 101 chose another protocol.
    """
    if switch is None:
        return Response(200, Headers.from_parsed([hop.via(request.http_version, policy)]))
    via = hop.via(switch.http_version, policy)
    chosen = switch.connection.fields.get_all(b"upgrade") or [offer]
    if request.http_version == b"2":
        key = sent.headers.get(b"sec-websocket-key") or b""
        if (switch.headers.get(b"sec-websocket-accept") != accept_key(key)
                or chosen[0].lower() != b"websocket"):
            raise WrongAccept("the upstream's 101 does not answer our Sec-WebSocket-Key "
                              "(RFC 6455 §4.1)")
        fields = [f for f in switch.headers.fields if f[0] != b"sec-websocket-accept"]
        return Response(200, Headers.from_parsed([*fields, via]))
    fields = [*switch.headers.fields, via]
    return InformationalResponse(101, Headers.from_parsed(fields), switch.reason,
                                 ConnectionInfo(["upgrade"], [(b"Upgrade", chosen[0])]))


def join(endpoint: Endpoint, conn: HTTPConnection) -> Pipe:
    """Switch the client's endpoint and the upstream connection to raw bytes, joined."""
    pipe = Pipe(endpoint, conn)
    conn.switch(pipe.b)  # (the upstream's early bytes first: the 101 is already written)
    endpoint.switch(pipe.a)
    return pipe
