"""One proxied request, as a state machine that never awaits.

An :class:`Exchange` is advanced by events: the pool lends a connection
(``_lent``, at once when one is idle, later when the pool must wait or
connect), the upstream connection gets bytes, EOF or room to write
(``upstream_readable``, ``upstream_writable``), the client's body arrives or
its transport drains (``on_body``, ``on_end``, ``on_writable``), the client
leaves (``on_lost``), a deadline passes (``deadline_passed``) or an async hook
finishes. A coroutine runs only where something is really asynchronous: an
async hook. Warm or cold is only whether the pool lends at once; the request
body streams up from the client's callbacks with backpressure both ways.

Steps (:class:`Step`)::

    PREPARE -> [HOOK] -> ACQUIRE -> AWAIT_HEAD -> [RESPONSE_HOOK] -> RELAY -> DONE
                                        \\-> TUNNEL (101, or CONNECT's 200)

A failure before the response head goes to the client ends in an error
answer (502/504, or 500 for our own fault) or, when
:func:`~onehop.client.exchange.should_resend` allows, in ACQUIRE again on a
fresh connection. A failure after it cuts the client connection: the head
is out, so that is the only honest signal (RFC 9112 §8). Whether the client
connection persists afterwards is not decided here: the response's connection
part says ``close`` when the request body was not all read, and the serving
endpoint decides in one place (``ServerEndpoint.finish``).

This module takes the exchange as far as the response head: route, hooks, a
connection, the request and its body up, the head (or a resend, or an error).
What the client gets from then on (the response relayed, a tunnel, the proxy's
own answer) and the access log are the base class,
:class:`~onehop.proxy.downstream.Downstream`, with :class:`Step`,
:class:`Deadline` and :class:`ClientSide`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from onehop.client.connection import HTTPConnection
from onehop.client.errors import (
    ClientError,
    ClosedBeforeResponse,
    ConnectError,
    ServerDisconnected,
)
from onehop.client.exchange import Attempt, describe
from onehop.client.pool import Loan
from onehop.core import (
    NEED_DATA,
    Connection,
    ConnectionInfo,
    Headers,
    InformationalResponse,
    Request,
    Response,
    Role,
)
from onehop.core.headers import NO_CONNECTION_INFO
from onehop.errors import LocalProtocolError, RemoteProtocolError
from onehop.proxy import hop
from onehop.proxy.downstream import ClientSide, Deadline, Downstream, Step
from onehop.proxy.forward import BadForwardTarget, ForwardDenied, parse_absolute
from onehop.proxy.tunnels import ConnectRefused, connect_target, websocket_upgrade_fields

if TYPE_CHECKING:
    from onehop.proxy.upstreams import Upstream, UpstreamGroup

log: Final = logging.getLogger("onehop.proxy")

#: A request goes upstream at most twice: once more on a fresh connection after the
#: keep-alive race (RFC 9112 §9.3.1).
MAX_SENDS: Final = 2


_PREPARE: Final = Step.PREPARE
_ACQUIRE: Final = Step.ACQUIRE
_AWAIT_HEAD: Final = Step.AWAIT_HEAD
_RELAY: Final = Step.RELAY
_DONE_STEP: Final = Step.DONE
_READ: Final = Deadline.UPSTREAM_READ
_NO_DEADLINE: Final = Deadline.NONE


class Exchange(Downstream):
    """One request through the proxy (see the module docstring).

    Owned by its :class:`~onehop.proxy.inbound.Inbound`; every method runs on the
    event loop. ``conn`` is the upstream connection while one is lent to it. Its base,
    :class:`~onehop.proxy.downstream.Downstream`, sends the client what it gets and
    holds the slots that needs (``conn``, ``response``, ``relay``, ``step`` ...).
    """

    __slots__ = (
        "attempt",
        "authority",
        "body_done",
        "body_sent",
        "group",
        "has_body",
        "loan",
        "pending",
        "t0",
        "target",
        "task",
        "trailers",
        "tried",
        "upstream",
    )

    def __init__(self, inbound: ClientSide, request: Request) -> None:
        self.inbound = inbound
        self.proxy = inbound.proxy
        self.endpoint = inbound.endpoint
        self.request = request
        self.step = _PREPARE
        self.t0 = time.monotonic()
        self.t_up = 0.0
        self.outbound = request
        self.target = request.target
        self.authority: bytes | None = None
        self.group: UpstreamGroup | None = None
        self.upstream: Upstream | None = None
        self.origin = None
        self.tried: list[Upstream] = []
        self.conn = None
        self.loan: Loan | None = None
        self.task: asyncio.Task[None] | None = None
        #: The sends so far, made at the first failure (most exchanges never need one).
        self.attempt: Attempt | None = None
        #: The connection lent last carried an earlier exchange.
        self.reused = False
        self.response = None
        self.relay = None
        #: The request has content to stream up; pieces parsed before an upstream
        #: connection was lent wait in ``pending`` (reading pauses meanwhile).
        self.has_body = False
        self.pending: list[bytes] = []
        self.trailers: Headers | None = None
        #: Some content went up (no resend after that); all of it was read from the client.
        self.body_sent = False
        self.body_done = False
        #: The request offers an Upgrade (a 101 turns the exchange into a tunnel).
        self.upgrade = b""
        #: The relay stopped until the client reads (``on_writable`` resumes it).
        self.waiting_client = False

    # --- PREPARE: route, strip, hook ----------------------------------------------------------

    def start(self) -> None:
        """Route the request and build what goes upstream; then wait for a connection."""
        req = self.request
        proxy = self.proxy
        cfg = proxy.config
        if req.method == b"CONNECT":
            self._start_connect()
            return
        target = req.target
        host_override = None
        if target[:1] != b"/" and target != b"*":
            # absolute-form: its authority is the host asked for, in both modes
            # (RFC 9112 §3.2.2: the received Host is ignored).
            try:
                scheme, host, port, self.authority, target = parse_absolute(target)
                if cfg.forward is not None:
                    cfg.forward.check(host, port)
                    self.origin = (scheme, host, port)
                    host_override = self.authority
            except ForwardDenied as exc:
                self._fail(403, f"Forbidden: {exc}")
                return
            except BadForwardTarget as exc:
                self._fail(400, f"Bad Request: {exc}")
                return
        self.target = target
        upstream_authority = self.authority or b""
        if self.origin is None:
            group = self.group = proxy.catch_all or proxy.route(
                self.authority or req.headers.get(b"host"), target)
            if group is None:
                self._fail(404, "No route for this request")
                return
            upstream = self.upstream = group.pick(self.t0)
            self.origin = upstream.origin
            upstream_authority = upstream.authority
        has_body = self.has_body = hop.request_has_body(req)
        if has_body:
            self.endpoint.pause_reading()  # the body waits until an upstream takes it
        try:
            if not has_body and self.authority is None:
                outbound = self.inbound.up_fields.request(req, upstream_authority)
            else:
                outbound = hop.outbound_request(
                    req, policy=cfg.headers, client_ip=self.inbound.client_ip,
                    scheme=self.endpoint.scheme,
                    upstream_authority=upstream_authority, target=target, host=host_override,
                    target_authority=self.authority, has_body=has_body)
        except hop.RequestRefused as exc:
            self._fail(400, f"Bad Request: {exc}", close=True)
            return
        conn_info = req.connection
        if conn_info is not NO_CONNECTION_INFO and conn_info.upgrade and not has_body:
            # An Upgrade offer goes up as a real one (RFC 9110 §7.8), over HTTP/1.1.
            self.upgrade = b", ".join(conn_info.upgrade)
            headers = outbound.headers
            if req.http_version == b"2":  # an extended CONNECT (RFC 8441): the key is ours
                headers = websocket_upgrade_fields(headers)
            outbound = Request(outbound.method, outbound.target, headers,
                               ConnectionInfo(["upgrade"], [(b"Upgrade", self.upgrade)]), b"1.1")
        self.outbound = outbound
        hook = proxy.request_hook
        if hook is not None:
            self._call_hook(hook, req, outbound, self._request_hooked)
            return
        self._acquire()

    def _request_hooked(self, replaced: Any) -> None:
        if replaced is not None:
            if not isinstance(replaced, Request) or not self._sendable(replaced):
                return
            self.outbound = replaced
        self._acquire()

    def _sendable(self, request: Request) -> bool:
        """Whether the core can send *request* (a hook's replacement): else answer 500.

        A hook's mistake is ours, not the upstream's: it must neither cost a pooled
        connection nor mark the upstream down (so it is checked before one is lent).
        """
        try:
            Connection(Role.CLIENT).send(request)
        except LocalProtocolError as exc:
            log.error("client %s: request hook returned a request that cannot be sent: %s",
                      self.inbound.client, exc)
            self._fail(500, "Internal Server Error: the proxy's request hook failed", close=True)
            return False
        return True

    def _call_hook(self, hook: Callable[[Any, Any], Any], received: Any, outbound: Any,
                   then: Callable[[Any], None]) -> None:
        """Call a user hook and go on with its result, in a task when it is awaitable; a
        hook that raises is our fault: 500 with a log line, never the upstream's."""
        try:
            result = hook(received, outbound)
        except Exception:
            self._hook_failed()
            return
        if not inspect.isawaitable(result):
            then(result)
            return
        self.step = Step.HOOK if self.step is _PREPARE else Step.RESPONSE_HOOK

        async def wait() -> None:
            try:
                value = await result
            except Exception:
                self._hook_failed()
                return
            if self.step is not _DONE_STEP:
                then(value)

        self.task = self.endpoint.loop.create_task(wait())

    def _hook_failed(self) -> None:
        log.exception("client %s: proxy hook failed", self.inbound.client)
        self._abandon_upstream("hook failed")
        self._fail(500, "Internal Server Error: a proxy hook failed", close=True)

    # --- ACQUIRE ------------------------------------------------------------------------------

    def _acquire(self) -> None:
        """Ask the pool for a connection: at once when one is idle, else wait (event)."""
        self.step = _ACQUIRE
        origin = self.origin
        assert origin is not None
        pool = self.proxy.pool
        # A resend goes on a new connection (RFC 9112 §9.3.1), and so does a CONNECT.
        fresh = self.attempt is not None or self.upgrade == b"connect"
        conn = None if fresh else pool.acquire_idle(origin)
        if conn is not None:
            self._lent(conn, True)
            return
        got = pool.lend(origin, self._lent, self._not_lent, fresh=fresh,
                        connect_timeout=self.proxy.config.timeouts.connect)
        if isinstance(got, HTTPConnection):
            self._lent(got, True)
            return
        self.loan = got
        self.inbound.arm(Deadline.ACQUIRE, self.proxy.config.timeouts.connect)

    def _not_lent(self, exc: BaseException) -> None:
        """The pool could not open a connection: try another member, else 502/504."""
        self.loan = None
        if self.step is _DONE_STEP:
            return
        self.inbound.deadline = _NO_DEADLINE
        upstream, group = self.upstream, self.group
        timed_out = not isinstance(exc, ConnectError)
        if upstream is not None and group is not None:
            if not timed_out:
                upstream.failed(time.monotonic())
            self.tried.append(upstream)
            if len(self.tried) < len(group.members):
                nxt = group.pick(time.monotonic(), self.tried)
                if nxt not in self.tried:
                    self.upstream = nxt
                    self.origin = nxt.origin
                    self._acquire()
                    return
        self._upstream_error(504 if timed_out else 502, exc)

    def _lent(self, conn: HTTPConnection, reused: bool) -> None:
        """A connection for this exchange: send the request (or open the tunnel)."""
        self.loan = None
        inbound = self.inbound
        inbound.deadline = _NO_DEADLINE
        if self.attempt is not None:
            self.attempt.begin(conn, reused)
        self.reused = reused
        self.conn = conn
        if self.upgrade == b"connect":
            self._open_tunnel(None)
            return
        outbound = self.outbound
        try:
            if self.has_body:
                conn.send_head_nowait(outbound)
            else:
                # (A full transport buffer needs no wait: the answer is awaited anyway,
                # and the read deadline covers an upstream that takes nothing.)
                conn.send_request_nowait(outbound)
        except (ClientError, LocalProtocolError, OSError) as exc:
            self._send_failed(exc)
            return
        self.step = _AWAIT_HEAD
        conn.set_listener(self)
        inbound.deadline = _READ
        inbound.timer.arm(self.proxy.config.timeouts.read)
        if self.has_body:
            self._start_upload()

    # --- the request body (streams up from the client's callbacks) ------------------------------

    def _start_upload(self) -> None:
        conn = self.conn
        assert conn is not None
        if self.request.expects_continue and not self.body_done:
            # The proxy answers Expect itself, now that it reads the body (RFC 9110 §10.1.1).
            self.endpoint.informational(InformationalResponse(100))
        pending, self.pending = self.pending, []
        for data in pending:
            self._upload(data)
        if self.body_done:
            self._upload_end()
        elif not conn.write_paused:
            self.endpoint.resume_reading()

    def on_body(self, data: bytes) -> None:
        if self.step is _ACQUIRE or self.step is Step.HOOK or self.step is _PREPARE:
            self.pending.append(data)  # (parsed before reading paused)
            return
        if self.conn is not None and self.response is None:
            self._upload(data)

    def _upload(self, data: bytes) -> None:
        conn = self.conn
        assert conn is not None
        self.body_sent = True
        try:
            paused = conn.send_data_nowait(data)
        except (ClientError, LocalProtocolError) as exc:
            self._send_failed(exc)
            return
        if paused:
            # The upstream is slow to take the body: stop reading the client until it does.
            self.endpoint.pause_reading()
            self.inbound.arm(Deadline.UPSTREAM_WRITE, self.proxy.config.timeouts.write)

    def on_end(self, trailers: Headers) -> None:
        self.body_done = True
        if not self.has_body:
            return  # (the end went up with the head)
        self.trailers = trailers
        if self.step is _AWAIT_HEAD and self.response is None and self.conn is not None:
            self._upload_end()

    def _upload_end(self) -> None:
        conn = self.conn
        assert conn is not None
        trailers = self.trailers
        fields = hop.forward_trailers(
            trailers, self.request.connection.options,
            underscores=self.proxy.config.headers.underscores is hop.Underscores.PASS,
        ) if trailers and hop.request_is_chunked(self.outbound) else None
        try:
            conn.send_end_nowait(fields)
        except (ClientError, LocalProtocolError) as exc:
            self._send_failed(exc)

    def upstream_writable(self) -> None:
        if (self.has_body and self.step is _AWAIT_HEAD and not self.body_done
                and self.response is None):
            self.inbound.arm(_READ, self.proxy.config.timeouts.read)
            self.endpoint.resume_reading()

    # --- AWAIT_HEAD -----------------------------------------------------------------------------

    def upstream_readable(self) -> None:
        """Bytes, EOF or loss on the upstream connection: read the head, or relay on."""
        step = self.step
        if step is _RELAY:
            self._relay()
            return
        if step is not _AWAIT_HEAD:
            return  # (a response hook runs: the bytes wait in the core)
        conn = self.conn
        assert conn is not None
        ucore = conn.core
        try:
            event = ucore.next_event()
            while type(event) is InformationalResponse:
                if event.status_code == 101:
                    self._open_tunnel(event)
                    return
                self._relay_informational(event)
                event = ucore.next_event()
        except RemoteProtocolError as exc:
            self._send_failed(exc)
            return
        if event is NEED_DATA and not conn.at_eof:
            # Bytes came (part of a head, or a 1xx): ``read`` times the upstream's silence.
            self.inbound.arm(_READ, self.proxy.config.timeouts.read)
            return
        if type(event) is not Response:
            if conn.bytes_received:
                self._send_failed(ServerDisconnected("upstream closed inside its answer"))
            else:
                self._send_failed(ClosedBeforeResponse(
                    "upstream closed the connection without answering"))
            return
        self._got_head(event)

    def _got_head(self, response: Response) -> None:
        self.response = response
        self.t_up = time.monotonic() - self.t0
        self.inbound.deadline = _NO_DEADLINE
        upstream = self.upstream
        if upstream is not None and upstream.failures:
            upstream.succeeded()
        # The upstream answered before the whole request body went up: the rest is not
        # forwarded; the endpoint reads and discards a short rest, or closes after
        # the answer (and says so in it).
        out = self.inbound.down_fields.response(
            response, self.endpoint.response_connection(body_unwanted=not self.body_done))
        hook = self.proxy.response_hook
        if hook is not None:
            self._call_hook(hook, response, out, self._response_hooked)
            return
        self._begin_relay(out)

    def _response_hooked(self, replaced: Any) -> None:
        out = replaced
        if out is None or not isinstance(out, Response):
            response = self.response
            assert response is not None
            out = self.inbound.down_fields.response(
                response, self.endpoint.response_connection(body_unwanted=not self.body_done))
        self._begin_relay(out)

    # --- CONNECT ------------------------------------------------------------------------------

    def _start_connect(self) -> None:
        """CONNECT (RFC 9110 §9.3.6): a forward proxy opens TCP to an allowed host:port,
        through the pool (its limits apply), answers 200 and tunnels."""
        try:
            host, port = connect_target(self.request, self.proxy.config.forward)
        except ConnectRefused as exc:
            self._fail(exc.status, exc.text, close=exc.close)
            return
        self.origin = ("http", host, port)
        self.upgrade = b"connect"
        self._acquire()

    # --- failures; the client drains, half-closes or leaves -----------------------------------

    def _send_failed(self, exc: BaseException) -> None:
        """Sending, or waiting for the head, failed: resend on a fresh connection when
        :func:`~onehop.client.exchange.should_resend` says so, else answer."""
        attempt = self.attempt
        conn = self.conn
        if attempt is None:
            # The first failure: the books start now, with the send that failed.
            attempt = self.attempt = Attempt(self.outbound, replayable=True,
                                             max_sends=MAX_SENDS)
            if conn is not None:
                attempt.begin(conn, self.reused)
        self.inbound.deadline = _NO_DEADLINE
        self.conn = None
        if conn is not None:
            conn.set_listener(None)
        why_not = attempt.failed(exc)
        if isinstance(exc, LocalProtocolError):
            # Our own request refused by the core: a local fault, never the upstream's.
            if attempt.intact and conn is not None:
                self.proxy.pool.give_back(conn)
            log.error("client %s: request cannot be sent upstream: %s", self.inbound.client, exc)
            self._fail(500, "Internal Server Error: the request cannot be sent upstream",
                       close=True)
            return
        if why_not is None and not self.body_sent:
            log.info("retrying %s %s on a new upstream connection after: %s",
                     self.request.method.decode(), self.target.decode("latin-1"),
                     describe(attempt.error or exc))
            self._acquire()
            return
        reused = attempt.reused
        got = conn.bytes_received if conn is not None else 0
        upstream = self.upstream
        if not reused and upstream is not None and not got and not isinstance(
                exc, RemoteProtocolError):
            upstream.failed(time.monotonic())
        if self.proxy.config.retry_non_idempotent_close and reused and not got:
            self._log(502)
            self.step = _DONE_STEP
            self.endpoint.abort()  # let the client retry itself, as HAProxy does
            return
        self._upstream_error(502, attempt.error or exc)

    def _upstream_error(self, status: int, exc: BaseException) -> None:
        if status == 504:
            text = f"Gateway Timeout: the upstream did not answer in time ({describe(exc)})"
        else:
            text = f"Bad Gateway: {describe(exc)}"
        self._fail(status, text)

    def deadline_passed(self, deadline: Deadline) -> None:
        """The inbound timer fired for *deadline*."""
        step = self.step
        timeouts = self.proxy.config.timeouts
        if deadline is Deadline.ACQUIRE and step is _ACQUIRE:
            loan, self.loan = self.loan, None
            if loan is not None:
                loan.cancel()
            self._upstream_error(504, TimeoutError(
                f"no upstream connection within {timeouts.connect:g} s"))
        elif step is _AWAIT_HEAD:
            self._abandon_upstream("upstream timed out")
            waited = timeouts.write if deadline is Deadline.UPSTREAM_WRITE else timeouts.read
            self._upstream_error(504, TimeoutError(f"no answer within {waited:g} s"))
        elif step is _RELAY:
            self._relay_failed(TimeoutError(f"upstream silent for {timeouts.read:g} s"))

    def on_writable(self) -> None:
        if self.step is _RELAY and self.waiting_client:
            self._relay()
        elif self.step is _AWAIT_HEAD and self.conn is not None and not self.body_done:
            pass  # (reading the client is paused by the upstream, not by the client)

    def on_eof(self) -> None:
        pass  # (a half-close: the endpoint's ``half_close_abandons`` rule applies)

    def on_lost(self) -> None:
        """The client is gone (or its request was abandoned): cut the upstream exchange,
        as nginx does (its 499); the answer would go nowhere useful."""
        if self.step is _DONE_STEP or self.step is Step.TUNNEL:
            return
        self.step = _DONE_STEP
        self.inbound.deadline = _NO_DEADLINE
        loan, self.loan = self.loan, None
        if loan is not None:
            loan.cancel()
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
        self._abandon_upstream("client disconnected")
