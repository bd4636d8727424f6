"""The client-facing half of a proxied exchange: what its client gets.

:class:`Downstream` is the base of :class:`~onehop.proxy.exchange.Exchange` and
holds what reaches the client connection: an upstream 1xx relayed, the response
relayed with backpressure (RELAY; :class:`~onehop.proxy.relay.Relay` frames it)
and ended by giving the upstream connection back or, when the relay fails, by
cutting the client connection; the switch to a tunnel (101, or CONNECT's 200);
the proxy's own answer (an error); and the access log line. Calls go one way:
the exchange calls these, and these call nothing of the exchange's, so this half
needs to know only the attributes it uses: they are its slots (typed here, set in
the exchange's ``__init__``, so an exchange costs no second ``__init__`` call).

Both halves share where an exchange is (:class:`Step`, see
``onehop.proxy.exchange``), what it waits for with a time limit
(:class:`Deadline`) and what it uses of its client connection's handler
(:class:`ClientSide`); they are here, below both.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Final, Protocol

from onehop.client.errors import ClientError
from onehop.client.exchange import describe
from onehop.core import NEED_DATA, InformationalResponse, Request, Response
from onehop.errors import LocalProtocolError, RemoteProtocolError
from onehop.proxy import hop
from onehop.proxy.relay import DONE, Relay
from onehop.proxy.tunnels import WrongAccept, join, switch_head

if TYPE_CHECKING:
    from onehop._aio.handlers import Endpoint
    from onehop._aio.timer import LazyTimer
    from onehop.client.connection import HTTPConnection, Origin
    from onehop.proxy.routing import Router

log: Final = logging.getLogger("onehop.proxy")


class Step(enum.Enum):
    """Where an exchange is (see ``onehop.proxy.exchange``)."""

    PREPARE = "prepare"
    HOOK = "hook"  #: an async request hook runs
    ACQUIRE = "acquire"  #: waiting for the pool to lend a connection
    AWAIT_HEAD = "await-head"  #: the request is going up; the response head is awaited
    RESPONSE_HOOK = "response-hook"  #: an async response hook runs
    RELAY = "relay"  #: the response goes to the client
    TUNNEL = "tunnel"  #: switched protocols: bytes go both ways
    DONE = "done"


class Deadline(enum.Enum):
    """What an exchange is waiting for, with a time limit."""

    NONE = "none"
    ACQUIRE = "acquire"  #: a pooled or new upstream connection (``timeouts.connect``)
    UPSTREAM_READ = "upstream-read"  #: the upstream's silence (``timeouts.read``)
    UPSTREAM_WRITE = "upstream-write"  #: the upstream taking the request body (``.write``)


_RELAY: Final = Step.RELAY
_DONE_STEP: Final = Step.DONE
_READ: Final = Deadline.UPSTREAM_READ
_NO_DEADLINE: Final = Deadline.NONE


class ClientSide(Protocol):
    """What an exchange uses of its client connection's handler (an
    :class:`~onehop.proxy.inbound.Inbound`): the connection, what it remembers per
    client, and its one deadline timer."""

    proxy: Router
    endpoint: Endpoint
    client: str
    client_ip: str
    up_fields: hop.LastFields
    down_fields: hop.LastFields
    deadline: Deadline
    timer: LazyTimer

    def arm(self, deadline: Deadline, delay: float) -> None: ...

    def log_access(self, request: Request, status: int, nbytes: int, origin: Origin | None,
                   t_up: float, reused: bool | None) -> None: ...


class Downstream:
    """What an exchange sends its client (see the module docstring): the base of
    :class:`~onehop.proxy.exchange.Exchange`, whose ``__init__`` sets these slots."""

    __slots__ = (
        "conn",
        "endpoint",
        "inbound",
        "origin",
        "outbound",
        "proxy",
        "relay",
        "request",
        "response",
        "reused",
        "step",
        "t_up",
        "upgrade",
        "waiting_client",
    )

    inbound: ClientSide
    proxy: Router
    endpoint: Endpoint
    request: Request
    #: What went (or goes) upstream: the request after the proxy's rules and the hook.
    outbound: Request
    step: Step
    conn: HTTPConnection | None
    origin: Origin | None
    reused: bool
    t_up: float
    upgrade: bytes
    response: Response | None
    relay: Relay | None
    waiting_client: bool

    # --- 1xx ----------------------------------------------------------------------------------

    def _relay_informational(self, info: InformationalResponse) -> None:
        """Forward an upstream 1xx (e.g. 103 Early Hints) to the client (RFC 9110 §15.2).

        "A proxy MUST forward 1xx responses unless the proxy itself requested the
        generation of the 1xx response", but "a server MUST NOT send a 1xx response
        to an HTTP/1.0 client": those are dropped. ``100 Continue`` is dropped too:
        the proxy answers ``Expect`` itself, so an upstream 100 answers no
        expectation of the client's.
        """
        if info.status_code == 100 or self.request.http_version == b"1.0":
            return
        try:
            self.endpoint.informational(
                hop.outbound_informational(info, self.proxy.config.headers))
        except LocalProtocolError as exc:
            log.info("client %s: %d not relayed: %s", self.inbound.client, info.status_code, exc)

    # --- RELAY --------------------------------------------------------------------------------

    def _begin_relay(self, out: Response) -> None:
        conn, response = self.conn, self.response
        assert conn is not None and response is not None
        try:
            head = self.endpoint.core.send(out)
        except LocalProtocolError as exc:
            conn.abort(f"response cannot be forwarded: {exc}")
            self.conn = None
            self._fail(502, f"Bad Gateway: upstream response cannot be forwarded ({exc})")
            return
        self.relay = Relay(self.endpoint.core, conn.core, head, response.connection.options)
        self.step = _RELAY
        self._relay()

    def _relay(self) -> None:
        """Frame what the upstream sent; write it; wait for the upstream or the client."""
        relay, conn = self.relay, self.conn
        assert relay is not None and conn is not None
        endpoint = self.endpoint
        self.waiting_client = False
        try:
            while True:
                state = relay.gather()
                if state is DONE:
                    break
                endpoint.write(relay.take())
                if endpoint.flow.write_paused:
                    self.waiting_client = True  # (``on_writable`` goes on)
                    self.inbound.deadline = _NO_DEADLINE
                    return
                if state is NEED_DATA:
                    self.inbound.arm(_READ, self.proxy.config.timeouts.read)
                    return
        except (RemoteProtocolError, ClientError) as exc:
            self._relay_failed(exc)
            return
        self._done(relay.take())

    def _relay_failed(self, exc: BaseException) -> None:
        """Mid-body failure: the head is out, so the only honest signal is to cut the
        client connection (RFC 9112 §8: an incomplete message)."""
        self._abandon_upstream(f"response relay failed: {describe(exc)}")
        self._log(self.response.status_code if self.response else 502)
        self.step = _DONE_STEP
        self.endpoint.abort()

    def _done(self, data: bytes) -> None:
        """The whole response is framed: give the upstream connection back, write the
        last bytes, and let the endpoint keep or close the client connection."""
        conn, response = self.conn, self.response
        assert conn is not None and response is not None
        self.conn = None
        self.step = _DONE_STEP
        self.inbound.deadline = _NO_DEADLINE
        conn.set_listener(None)
        if conn.finish_exchange(response):
            self.proxy.pool.release(conn)
        self._log(response.status_code)
        self.endpoint.finish(data)

    # --- TUNNEL (101, CONNECT's 200) ----------------------------------------------------------

    def _open_tunnel(self, switch: InformationalResponse | None) -> None:
        """Answer 101 (*switch*, the upstream's; an HTTP/2 client's WebSocket: 200) or
        CONNECT's 200, then join the client's connection and the upstream's
        (:func:`~onehop.proxy.tunnels.join`); a 101 that cannot be forwarded is a 502."""
        conn = self.conn
        assert conn is not None
        endpoint = self.endpoint
        try:
            head = switch_head(self.request, switch, self.upgrade, self.proxy.config.headers,
                               self.outbound)
            endpoint.write(endpoint.core.send(head))
        except (LocalProtocolError, WrongAccept) as exc:
            self._abandon_upstream(f"switch cannot be forwarded: {exc}")
            self._fail(502, f"Bad Gateway: {exc}", close=True)
            return
        self.conn = None
        self.step = Step.TUNNEL
        self.inbound.deadline = _NO_DEADLINE
        conn.set_listener(None)
        self._log(head.status_code)
        join(endpoint, conn)

    # --- the upstream abandoned, the proxy's own answer, the access log -----------------------

    def _abandon_upstream(self, reason: str) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.set_listener(None)
            conn.abort(reason)

    def _fail(self, status: int, text: str, *, close: bool = False) -> None:
        """Answer with a short text (the proxy's own answer: nothing relayed)."""
        self.step = _DONE_STEP
        self.inbound.deadline = _NO_DEADLINE
        self._log(status)
        self.endpoint.send_error(status, text, close=close)

    def _log(self, status: int) -> None:
        proxy = self.proxy
        proxy.requests += 1
        if proxy.log_access:
            relay = self.relay
            self.inbound.log_access(
                self.request, status, relay.nbytes if relay is not None else 0, self.origin,
                self.t_up, None if self.t_up == 0.0 else self.reused)
