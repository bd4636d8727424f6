"""One client connection of the proxy: the handler the serving endpoint calls.

The endpoint (:class:`~onehop._aio.endpoint.ServerEndpoint`) does everything a
server-role connection needs; :class:`Inbound` only keeps what the proxy
remembers per client connection (the client's address, the outbound fields it
last built each way, see :class:`~onehop.proxy.hop.LastFields`) and the one
timer its exchanges use for their deadlines, and starts one
:class:`~onehop.proxy.exchange.Exchange` per request. Over HTTP/2 the endpoint's
factory makes one per stream (its endpoint is the stream), so concurrent streams
never share an exchange, a timer or the remembered fields.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from onehop._aio.timer import LazyTimer
from onehop.core import Request
from onehop.proxy import hop
from onehop.proxy.downstream import Deadline
from onehop.proxy.exchange import Exchange

if TYPE_CHECKING:
    from onehop._aio.handlers import Endpoint
    from onehop.client.connection import Origin
    from onehop.proxy.routing import Router

access_log: Final = logging.getLogger("onehop.proxy.access")


_NONE: Final = Deadline.NONE


class Inbound:
    """The proxy's handler for one client connection (see the module docstring).

    Owns ``up_fields``/``down_fields``, the deadline timer (``timer``, timing
    ``deadline``) and ``exchange``, the request being answered. Touched only
    from the event loop.
    """

    __slots__ = ("client", "client_ip", "deadline", "down_fields", "endpoint", "exchange",
                 "proxy", "timer", "up_fields")

    def __init__(self, proxy: Router, endpoint: Endpoint) -> None:
        self.proxy = proxy
        self.endpoint = endpoint
        #: ``host:port`` of the client and its address, known from the first request on.
        self.client = "-"
        self.client_ip = "-"
        policy = proxy.config.headers
        self.up_fields = hop.LastFields(policy, self.client_ip)
        self.down_fields = hop.LastFields(policy, self.client_ip)
        self.exchange: Exchange | None = None
        # One lazily re-armed timer for every wait of every exchange on this connection,
        # so a keep-alive request costs no timer churn.
        self.timer = LazyTimer(endpoint.loop, self._timer_fired)
        self.deadline = _NONE

    def on_request(self, endpoint: Endpoint, request: Request) -> Exchange:
        if self.client_ip == "-" and endpoint.client_addr is not None:
            ip, port = endpoint.client_addr
            self.client_ip = ip
            self.client = f"{ip}:{port}"
            self.up_fields.client_ip = ip  # (for X-Forwarded-For)
            self.up_fields.scheme = endpoint.scheme  # (for X-Forwarded-Proto)
        exchange = self.exchange = Exchange(self, request)
        exchange.start()
        return exchange

    def on_closed(self) -> None:
        """The client connection (or HTTP/2 stream) is over: cancel the timer, whose
        pending handle would otherwise keep this handler and its last exchange alive
        until it fires (up to ``timeouts.read``: with a handler per HTTP/2 stream,
        every stream's)."""
        self.deadline = _NONE
        self.timer.cancel()

    def arm(self, deadline: Deadline, delay: float) -> None:
        """Time the current exchange's wait for *deadline* (replacing any other)."""
        self.deadline = deadline
        self.timer.arm(delay)

    def disarm(self) -> None:
        # Lazy: a pending handle lapses as a no-op (cheaper than cancel + re-arm).
        self.deadline = _NONE

    def log_access(self, request: Request, status: int, nbytes: int, origin: Origin | None,
                   t_up: float, reused: bool | None) -> None:
        """One ``onehop.proxy.access`` line for an exchange of this connection."""
        if not access_log.isEnabledFor(logging.INFO):
            return
        access_log.info(
            '%s "%s %s HTTP/%s" %d %d upstream=%s upstream_time=%.3f conn=%s',
            self.client, request.method.decode("latin-1"), request.target.decode("latin-1"),
            request.http_version.decode(), status, nbytes,
            f"{origin[1]}:{origin[2]}" if origin is not None else "-", t_up,
            "-" if reused is None else ("reused" if reused else "new"),
        )

    def _timer_fired(self) -> None:
        deadline, self.deadline = self.deadline, _NONE
        exchange = self.exchange
        if deadline is not _NONE and exchange is not None:
            exchange.deadline_passed(deadline)
