"""A response on its way from an upstream connection to the client, and trailer forwarding.

Everything already received (head, body, end) leaves in one write: a small
response costs one system call, not three. What must wait for the upstream
is written first, and at most ``FLUSH`` bytes gather before a write.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

from onehop.client.errors import ServerDisconnected
from onehop.core import NEED_DATA, Data, EndOfMessage
from onehop.core.headers import EMPTY_HEADERS
from onehop.errors import LocalProtocolError
from onehop.proxy import hop

if TYPE_CHECKING:
    from onehop._aio.handlers import Framer
    from onehop.core import Connection

#: Write a relayed response out once this many bytes gather, even if more are ready.
FLUSH: Final = 64 * 1024
_END: Final = EndOfMessage()

#: What :meth:`Relay.gather` says: the end is framed, or write out before gathering more.
DONE: Final = object()
FULL: Final = object()


def end_bytes(core: Framer, end: EndOfMessage, nominated: frozenset[bytes]) -> bytes:
    """The bytes ending the client's response, with the upstream's trailer fields when
    they may go on: minus hop-by-hop ones, and only when the client's response is
    chunked (RFC 9112 §7.1.2: only chunked carries trailers; to an HTTP/1.0 client
    or under Content-Length they are dropped, which RFC 9110 §6.5.1 allows:
    trailers can be discarded)."""
    if end.trailers:
        fields = hop.forward_trailers(end.trailers, nominated)
        if fields:
            with contextlib.suppress(LocalProtocolError):  # not chunked: state unchanged
                return core.send(EndOfMessage(fields))
    return core.send(_END)


class Relay:
    """Frames an upstream response's body for the client, gathering what is here.

    *down* is the client side's core (an HTTP/2 stream's adapter for an HTTP/2
    client), *up* the upstream connection's; *head* the
    client response head already framed; *nominated* the upstream head's
    ``Connection`` options (its trailers named there are not forwarded).
    """

    __slots__ = ("down", "nbytes", "nominated", "parts", "pending", "up")

    def __init__(self, down: Framer, up: Connection, head: bytes,
                 nominated: frozenset[bytes]) -> None:
        self.down = down
        self.up = up
        self.nominated = nominated
        self.parts = [head]
        self.pending = len(head)
        #: Content bytes relayed (for the access log).
        self.nbytes = 0

    def gather(self) -> object:
        """Frame what the upstream sent so far; return ``DONE`` (the end is framed),
        ``NEED_DATA`` (wait for the upstream) or ``FULL`` (write out first).

        Raises:
            RemoteProtocolError: the upstream broke the protocol mid-body
                (``IncompleteMessage`` when it closed early, RFC 9112 §8).
            ServerDisconnected: an event no body has.
        """
        up, down, parts = self.up, self.down, self.parts
        while self.pending < FLUSH:
            event = up.next_event()
            if type(event) is Data:
                self.nbytes += len(event.data)
                data = down.send(event)
                parts.append(data)
                self.pending += len(data)
            elif type(event) is EndOfMessage:
                trailers = event.trailers
                parts.append(down.send(_END) if trailers is EMPTY_HEADERS or not trailers else
                             end_bytes(down, event, self.nominated))
                return DONE
            elif event is NEED_DATA:
                return NEED_DATA
            else:
                raise ServerDisconnected(f"unexpected event {event!r} in a response body")
        return FULL

    def take(self) -> bytes:
        """What was gathered, to write now (and forget)."""
        parts = self.parts
        if not parts:
            return b""
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.parts = []
        self.pending = 0
        return data
