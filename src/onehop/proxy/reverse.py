"""The reverse (and forward) proxy: inbound connections on the core, upstream via the pool.

Each inbound connection is an :class:`asyncio.Protocol` driving a server-role
:class:`onehop.core.Connection` created with ``intermediary=True`` (an HTTP/1.0
client is never kept alive, RFC 9112 §9.3 / RFC 7230 §6.3). Its requests are
handled one at a time, in order (so pipelined requests are answered in order,
RFC 9112 §9.3.2): in the event loop's callbacks while nothing needs a wait (a
warm upstream connection that answers at once), else in a task (see
:class:`_Inbound`). Upstream connections come from :class:`onehop.client.Pool`,
which keeps each side's persistence separate: a client's ``close`` ends only
the client connection; an upstream ``close`` or HTTP/1.0 response retires only
that upstream connection.

The proxy never forwards bytes it did not frame itself: the core parses the
request (rejecting smuggling attempts with their ``status_hint`` before any
upstream is chosen), :mod:`onehop.proxy.hop` builds a fresh message from the
end-to-end fields, and the core's writers produce new framing on each side.

Bodies stream both ways: the inbound protocol stops reading when 256 KiB wait
unparsed, the upstream connection when 1 MiB does, and each copier waits for
the other side's transport to drain before reading more.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

from onehop._aio import FlowControl, LazyTimer
from onehop.client.connection import HTTPConnection, Origin
from onehop.client.errors import (
    ClientError,
    ConnectError,
    ConnectTimeout,
    PoolTimeout,
    ReadTimeout,
    ServerDisconnected,
    WriteTimeout,
)
from onehop.client.pool import Pool
from onehop.client.retry import is_retry_safe
from onehop.core import (
    NEED_DATA,
    Connection,
    ConnectionInfo,
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    Request,
    Response,
    Role,
    State,
    reason_phrase,
)
from onehop.core.headers import EMPTY_HEADERS
from onehop.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from onehop.proxy import hop
from onehop.proxy.config import ProxyConfig, Route, check_upstream_url, split_listen
from onehop.proxy.forward import BadForwardTarget, ForwardDenied, parse_absolute, split_authority
from onehop.proxy.tunnel import StreamEndpoint, splice

log = logging.getLogger("onehop.proxy")
access_log = logging.getLogger("onehop.proxy.access")

#: Stop reading from a client when this many bytes wait unparsed.
_IN_HIGH_WATER: Final = 256 * 1024
#: Write a relayed response out once this many bytes gather, even if more are ready.
_FLUSH: Final = 64 * 1024
_END: Final = EndOfMessage()
_NO_FIELDS: Final = Headers()
_NO_REQUEST: Final = Request(b"GET", b"/", [(b"Host", b"-")])
#: Back-off after an upstream refuses or resets: base, doubled per failure, capped.
BACKOFF_BASE: Final = 1.0
BACKOFF_MAX: Final = 30.0

RequestHook = Callable[[Request, Request], "Request | Awaitable[Request | None] | None"]
ResponseHook = Callable[[Response, Response], "Response | Awaitable[Response | None] | None"]


class ClientGone(Exception):
    """The client connection was lost."""


class BadRequestBody(Exception):
    """The client's body broke the protocol mid-stream (answer ``status``, close)."""

    def __init__(self, exc: RemoteProtocolError) -> None:
        super().__init__(str(exc))
        self.status = exc.status_hint


class Upstream:
    """One upstream server with passive health: refused or reset means skip for a while."""

    __slots__ = ("authority", "down_until", "failures", "label", "origin", "url")

    def __init__(self, url: str) -> None:
        host, port = check_upstream_url(url, "upstream")
        self.url = url
        self.origin: Origin = ("http", host, port)
        self.failures = 0
        self.down_until = 0.0
        h = f"[{host}]" if ":" in host else host
        #: ``Host`` for this upstream when the client's is not forwarded (computed once).
        self.authority = f"{h}:{port}".encode("latin-1") if port != 80 else h.encode("latin-1")
        #: ``host:port`` for the access log.
        self.label = f"{host}:{port}"

    def failed(self, now: float) -> None:
        """Refused or reset: back off ``BACKOFF_BASE * 2**(n-1)`` seconds, capped."""
        self.failures += 1
        self.down_until = now + min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (self.failures - 1))
        log.warning("upstream %s marked down for %.1f s", self.url, self.down_until - now)

    def succeeded(self) -> None:
        self.failures = 0
        self.down_until = 0.0


class UpstreamGroup:
    """Round-robin over members, skipping those in back-off."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.members = [Upstream(u) for u in urls]
        self._next = 0

    def pick(self, now: float, exclude: Sequence[Upstream] = ()) -> Upstream:
        """The next healthy member; if none, the one that comes back soonest."""
        members = self.members
        if len(members) == 1 and not exclude:
            return members[0]  # (healthy or not, it is the one that comes back soonest)
        n = len(members)
        for i in range(n):
            m = self.members[(self._next + i) % n]
            if m.down_until <= now and m not in exclude:
                self._next = (self._next + i + 1) % n
                return m
        candidates = [m for m in self.members if m not in exclude] or self.members
        return min(candidates, key=lambda m: m.down_until)


def _text(status: int, message: str) -> tuple[Response, bytes]:
    body = (message.rstrip() + "\n").encode("utf-8", "replace")
    head = Response(status, [(b"Content-Type", b"text/plain; charset=utf-8"),
                             (b"Content-Length", str(len(body)).encode())])
    return head, body


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class Proxy:
    """A reverse proxy (and, with ``config.forward``, a forward proxy).

    Args:
        config: routes, timeouts, limits, header policy; or use *upstreams*.
        upstreams: shorthand for one ``default`` group of ``http://`` URLs.
        request_hook: ``hook(inbound, outbound) -> Request | None``, called with
            the received request and the one about to go upstream, after
            stripping and after ``Via``/forwarding fields were added; return a
            replacement or None. Hop-by-hop fields it adds are refused by the
            core (502), so a hook cannot reopen what stripping closed.
        response_hook: ``hook(upstream_response, outbound) -> Response | None``, likewise.
        access_log: emit one ``onehop.proxy.access`` line per request.
    """

    def __init__(
        self,
        config: ProxyConfig | None = None,
        *,
        upstreams: Sequence[str] | None = None,
        request_hook: RequestHook | None = None,
        response_hook: ResponseHook | None = None,
        access_log: bool = True,
    ) -> None:
        cfg = config or ProxyConfig()
        if upstreams:
            cfg.upstreams = {**cfg.upstreams, "default": list(upstreams)}
        cfg.validate()
        self.config = cfg
        self.groups = {name: UpstreamGroup(urls) for name, urls in cfg.upstreams.items()}
        self.routes = sorted(cfg.routes, key=lambda r: (r.host is None, -len(r.path)))
        default = "default" if "default" in self.groups else next(iter(self.groups), None)
        if default is not None and not any(r.host is None and r.path == "/" for r in self.routes):
            self.routes.append(Route("/", default))
        #: The one group every request goes to, when the only route is the catch-all:
        #: routing then costs nothing per request.
        self._catch_all: UpstreamGroup | None = None
        if len(self.routes) == 1 and self.routes[0].host is None and self.routes[0].path == "/":
            self._catch_all = self.groups[self.routes[0].group]
        self.request_hook = request_hook
        self.response_hook = response_hook
        self.log_access = access_log
        self.pool = Pool(
            max_connections=cfg.limits.max_connections,
            max_per_origin=cfg.limits.max_per_upstream,
            idle_timeout=cfg.timeouts.upstream_idle,
        )
        self._server: asyncio.AbstractServer | None = None
        self._inbound: set[_Inbound] = set()
        #: Requests answered (for tests and the demo).
        self.requests = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(
        self, host: str | None = None, port: int | None = None, *,
        sock: socket.socket | None = None, reuse_port: bool = False,
    ) -> None:
        """Listen on *host*:*port* (default: ``config.listen``) or an open *sock*."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(lambda: _Inbound(self), sock=sock,
                                                    backlog=2048)
            return
        if host is None or port is None:
            h, p = split_listen(self.config.listen, "listen")
            host = h if host is None else host
            port = p if port is None else port
        self._server = await loop.create_server(
            lambda: _Inbound(self), host, port, backlog=2048, reuse_port=reuse_port or None
        )

    @property
    def port(self) -> int:
        """The port listened on (after :meth:`start`)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def aclose(self) -> None:
        """Stop listening, close every client connection and the upstream pool."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._inbound):
            conn.abort()
        await self.pool.aclose()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> Proxy:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- routing ------------------------------------------------------------------------------

    def route(self, host: bytes | None, path: bytes) -> UpstreamGroup | None:
        """The upstream group for a request: host (without port) and longest path prefix."""
        if self._catch_all is not None:
            return self._catch_all
        hname = None
        if host is not None:
            text = host.decode("latin-1").lower()
            hname = text.rsplit(":", 1)[0] if not text.endswith("]") else text
        p = path.decode("latin-1")
        for r in self.routes:
            if r.host is not None and r.host != hname:
                continue
            if p.startswith(r.path):
                return self.groups[r.group]
        return None


class _Inbound(asyncio.Protocol):
    """One client connection.

    The common exchange (a request without content for the catch-all route, on
    a warm upstream connection, whose answer arrives whole) runs entirely in
    event-loop callbacks: ``data_received`` parses the request and writes it
    upstream, the upstream connection's ``data_received`` relays the answer.
    A task switch costs more than the rest of such an exchange. Anything that
    must wait (a body, a cold pool, a slow or failing upstream, a large
    response, a tunnel) goes on in a task (``_task``) that hands the connection
    back to the callbacks when its exchange is done, so the client's requests
    are still answered one at a time and in order (RFC 9112 §9.3.2).
    """

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.core = Connection(Role.SERVER, intermediary=True)
        self.flow = FlowControl()
        self.transport: asyncio.Transport | None = None
        self.client = "-"
        self.client_ip = "-"
        self.lost = False
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self._task: asyncio.Task[None] | None = None
        # tunnel mode (after 101/CONNECT): bytes go here instead of the core
        self._tbuf: bytearray | None = None
        self._teof = False
        self._eof = False
        #: True while the request is complete and the upstream's answer is awaited.
        self._waiting_upstream = False
        #: The request whose answer is awaited (for relaying 1xx responses).
        self._current: Request = _NO_REQUEST
        #: The upstream connection whose answer the callbacks wait for, and its request.
        self._up: HTTPConnection | None = None
        self._attempt: _Attempt | None = None
        #: What the callbacks last sent up and down (see :class:`hop.LastFields`).
        self._up_fields = hop.LastFields(proxy.config.headers, self.client_ip)
        self._down_fields = hop.LastFields(proxy.config.headers, self.client_ip)
        # One lazily re-armed timer for the waits, so a keep-alive request costs no
        # timer churn: it times out the task's waiter, else the callbacks' wait (the
        # client's silence, or the upstream's while ``_up`` is set).
        self._timer = LazyTimer(self._loop, self._wait_timed_out)

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client_ip = str(peer[0])
            self.client = f"{peer[0]}:{peer[1]}"
        self._up_fields.client_ip = self.client_ip  # (for X-Forwarded-For)
        self.proxy._inbound.add(self)
        self._timer.arm(self.proxy.config.timeouts.client_idle)

    def data_received(self, data: bytes) -> None:
        tbuf = self._tbuf
        if tbuf is not None:
            tbuf += data
            if len(tbuf) > _IN_HIGH_WATER:
                self._pause()
        else:
            core = self.core
            core.receive_data(data)
            if core.buffered > _IN_HIGH_WATER:
                self._pause()
            if self._task is None:
                if self._up is None:  # (else a pipelined request waits its turn)
                    self._pump()
                return
        w = self._waiter  # (``_wake`` inlined)
        if w is not None and not w.done():
            w.set_result(None)

    def eof_received(self) -> bool:
        if self._tbuf is not None:
            self._teof = True
        else:
            self._eof = True
            self.core.receive_data(b"")
            task = self._task
            if self._waiting_upstream and task is not None and not task.done():
                # The client closed while we wait for the upstream: abort it, as
                # nginx does (its 499); the answer would go nowhere useful.
                task.cancel()
            elif self._up is not None:
                self._drop_upstream()  # (the same, in the callbacks)
                self._close()
            elif task is None:
                self._pump()  # the core now says why: closed, or a head cut short
        self._wake()
        return True  # keep our sending side open between messages

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._teof = True
        self.core.receive_data(b"")
        self.flow.close()
        self.proxy._inbound.discard(self)
        self._timer.cancel()
        self._wake()
        task = self._task
        if task is not None and not task.done():
            task.cancel()  # client gone: abort the upstream exchange
        if self._up is not None:
            self._drop_upstream()

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        transport = self.transport
        if (self._task is None and self._up is None and transport is not None
                and not transport.is_closing()):
            # The next request may have waited for the client to read. (Once closing,
            # after an error answer, nothing more is read or answered: RFC 9112 §9.6.)
            self._pump()

    def _pause(self) -> None:
        if not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self._read_paused and self.transport is not None and not self.lost:
            self._read_paused = False
            self.transport.resume_reading()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def _wait(self, timeout: float | None) -> None:
        fut = self._waiter = self._loop.create_future()
        if timeout is not None:
            self._timer.arm(timeout)
        try:
            await fut
        finally:
            self._waiter = None
            self._timer.disarm()

    def _wait_timed_out(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_exception(TimeoutError())
        elif self._up is not None:
            self._hand_over(0.0)  # the upstream's time is up: the task answers 504
        elif self._task is None:
            self._close()  # the client was idle (or slow with a head) too long

    async def next_event(self, timeout: float | None) -> Event:
        """The next event from the client; TimeoutError after *timeout* s of silence.

        Raises:
            RemoteProtocolError: the client broke the protocol (answer ``status_hint``).
            ClientGone: the connection was lost.
        """
        core = self.core
        while True:
            event = core.next_event()
            if event is not NEED_DATA:
                if not isinstance(event, Event):
                    raise ClientGone("paused")
                return event
            if self.lost:
                raise ClientGone("client connection lost")
            if self._read_paused:
                self._resume()
            await self._wait(timeout)

    # --- tunnel endpoint (after 101 / CONNECT) ------------------------------------------------

    async def read(self) -> bytes:
        while True:
            tbuf = self._tbuf
            assert tbuf is not None
            if tbuf:
                data = bytes(tbuf)
                tbuf.clear()
                self._resume()
                return data
            if self._teof or self.lost:
                return b""
            await self._wait(None)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        await self.flow.drain()

    def write_eof(self) -> None:
        t = self.transport
        if t is not None and not t.is_closing() and t.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                t.write_eof()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _enter_tunnel(self) -> None:
        data, eof = self.core.trailing_data
        self._tbuf = bytearray(data)
        self._teof = eof or self.lost

    # --- the connection's task ----------------------------------------------------------------

    def _pump(self) -> None:
        """Start on the client's next request, if it is here and nothing else runs."""
        if self._task is not None or self._up is not None or self.lost:
            return
        if self.flow.write_paused:
            # The client is not reading its answers: take no new request until it
            # does (``resume_writing`` pumps), so a pipelining client cannot make us
            # buffer every answer. (Not idle: it is slow, as in a relay's drain.)
            self._timer.disarm()
            return
        core = self.core
        try:
            # (Nothing buffered between requests: the parser has nothing to say yet.)
            event = core.next_event() if core.buffered or self._eof else NEED_DATA
        except RemoteProtocolError as exc:
            # Smuggling and malformed input stop here: nothing went upstream.
            log.info("client %s: %s", self.client, exc)
            self._send_error(exc.status_hint, f"{reason_phrase(exc.status_hint).decode()}: {exc}")
            self._close()
            return
        if event is NEED_DATA:
            if self._read_paused:
                self._resume()
            self._timer.arm(self.proxy.config.timeouts.client_idle)
        elif type(event) is Request:
            self._start(event)
        else:  # closed between requests, or paused after an answer that closes
            self._close()

    def _start(self, req: Request) -> None:
        """Send *req* upstream from the callbacks when nothing in it needs a wait, else
        answer it in a task.

        The callbacks take a request for the catch-all route without content,
        hooks, upgrade or nominated fields, when the pool has an idle connection.
        """
        proxy = self.proxy
        group = proxy._catch_all
        options = req.connection.options
        if (group is None or req.target[:1] != b"/" or proxy.request_hook is not None
                or proxy.response_hook is not None
                or (options and (b"upgrade" in options
                                 or not options.isdisjoint(hop.PROTECTED_FIELDS)))
                or hop.request_has_body(req)
                or type(self._next_nowait()) is not EndOfMessage):
            # (An error after the head is raised again for ``_exchange``, which answers it.)
            self._spawn(self._exchange(req))
            return
        cfg = proxy.config
        t0 = time.monotonic()
        upstream = group.pick(t0)
        try:
            outbound = self._up_fields.request(req, upstream.authority)
        except hop.RequestRefused:
            self._spawn(self._exchange(req))  # (which answers 400 and closes)
            return
        att = _Attempt(req, outbound, req.target, group, upstream, upstream.origin, None, t0)
        conn = proxy.pool.acquire_idle(upstream.origin)
        if conn is None:
            self._spawn(self._forward(att, cfg.timeouts.read))
            return
        try:
            paused = conn.send_request_nowait(outbound)
        except (ClientError, ProtocolError, OSError):
            # The task sends again, meets the same error and retries or answers.
            self._spawn(self._forward(att, cfg.timeouts.read, conn))
            return
        if paused:
            self._spawn(self._forward(att, cfg.timeouts.read, conn, sent=True))
            return
        self._current = req
        self._attempt = att
        self._up = conn
        conn.listen(self._on_upstream)
        self._timer.arm(cfg.timeouts.read)  # (``_wait_timed_out`` hands over at the deadline)

    def _on_upstream(self) -> None:
        """The upstream connection of a callback exchange got bytes, EOF or was lost: relay
        the answer if it is all here, else hand the exchange over to a task."""
        conn = self._up
        assert conn is not None
        ucore = conn.core
        try:
            event = ucore.next_event()
            while type(event) is InformationalResponse:
                self._relay_informational(self._current, event)
                event = ucore.next_event()
        except RemoteProtocolError:
            event = None  # (raised again for the task, which answers 502)
        if event is NEED_DATA and not conn.at_eof:
            # Bytes came (part of the head, or a 1xx): ``read`` times the upstream's
            # silence, not the whole wait, as in the task's ``read_response_head``.
            self._timer.arm(self.proxy.config.timeouts.read)
            return
        if type(event) is not Response:
            # EOF, an error, a broken head: the task's ``read_response_head`` meets it
            # again and retries or answers, as when it waited itself.
            self._hand_over(self._timer.deadline - self._loop.time())
            return
        conn, att = self._detach()
        upstream = att.upstream
        assert upstream is not None
        if upstream.failures:
            upstream.succeeded()
        out = self._down_fields.response(event)
        relay = self._begin_relay(att, event, out, conn, True, upstream.label, True)
        if isinstance(relay, _Relay):
            try:
                state = relay.gather()
            except Exception as exc:
                keep = self._relay_failed(relay, exc)
            else:
                if state is not _DONE:  # more to wait for: the task goes on with it
                    self._spawn(self._relay_rest(relay))
                    return
                relay.flush()
                keep = self._relay_done(relay)
        else:
            keep = relay
        if keep:
            self._pump()
        else:
            self._close()

    def _hand_over(self, read_timeout: float) -> None:
        """Let a task wait for the upstream's answer to the callback exchange, for the
        *read_timeout* left."""
        conn, att = self._detach()
        self._spawn(self._forward(att, max(0.0, read_timeout), conn, sent=True))

    def _drop_upstream(self) -> None:
        """The client left while a callback exchange waits: cut the upstream (nginx's 499)."""
        conn, _ = self._detach()
        conn.abort("client disconnected")

    def _detach(self) -> tuple[HTTPConnection, _Attempt]:
        """End the callbacks' hold on their upstream exchange (stop listening, drop the
        deadline); return its connection and attempt."""
        conn, att = self._up, self._attempt
        assert conn is not None and att is not None
        self._up = self._attempt = None
        conn.listen(None)
        self._timer.disarm()
        return conn, att

    def _spawn(self, exchange: Coroutine[Any, Any, bool]) -> None:
        # The task times its own waits: the callbacks' deadline must not fire in one
        # that has none (a tunnel's).
        self._timer.disarm()
        self._task = self._loop.create_task(self._run(exchange))

    async def _run(self, exchange: Coroutine[Any, Any, bool]) -> None:
        """Finish *exchange* in this task; then give the connection back to the callbacks,
        or close it (``exchange`` answers True only after checking ``core.must_close``)."""
        keep = False
        try:
            keep = await exchange
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug must not kill the server, only this connection
            log.exception("client %s: unexpected error", self.client)
            self.abort()
        if keep and not self.lost:
            self._task = None
            self._pump()
        else:
            self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _send_error(self, status: int, message: str, close: bool = False) -> bool:
        """Answer with a short text body; return whether the connection may persist."""
        if self.lost or self.transport is None:
            return False
        head, body = _text(status, message)
        if close:
            head = Response(head.status_code, head.headers, connection=ConnectionInfo(["close"]))
        try:
            out = self.core.send(head) + self.core.send(Data(body)) + self.core.send(
                EndOfMessage())
        except LocalProtocolError:
            self.abort()
            return False
        self.transport.write(out)
        return not self.core.must_close

    def _access(self, req: Request, status: int, nbytes: int, upstream: str, t_up: float,
                reused: bool | None) -> None:
        self.proxy.requests += 1
        if not self.proxy.log_access or not access_log.isEnabledFor(logging.INFO):
            return
        access_log.info(
            '%s "%s %s HTTP/%s" %d %d upstream=%s upstream_time=%.3f conn=%s',
            self.client, req.method.decode("latin-1"), req.target.decode("latin-1"),
            req.http_version.decode(), status, nbytes, upstream, t_up,
            "-" if reused is None else ("reused" if reused else "new"),
        )

    def _next_nowait(self) -> object:
        """The core's next event without waiting; an error counts as ``None``."""
        try:
            return self.core.next_event()
        except RemoteProtocolError:
            return None

    async def _finish_body(self, event: object = NEED_DATA) -> bool:
        """Read the request's (empty) content to its end; False if the client broke off.

        *event*: what the caller's own ``_next_nowait()`` returned, if it asked.
        """
        # Fast path: a body-less request's end is parsed with its head (no await).
        if event is NEED_DATA:
            event = self._next_nowait()
        if type(event) is EndOfMessage:
            return True
        if event is not NEED_DATA:
            return False
        try:
            event = await self.next_event(self.proxy.config.timeouts.read)
        except (RemoteProtocolError, TimeoutError, ClientGone):
            return False
        return type(event) is EndOfMessage

    async def _exchange(self, req: Request) -> bool:
        """Answer one request; return whether the client connection may carry another."""
        proxy = self.proxy
        cfg = proxy.config
        target = req.target
        forward = cfg.forward
        origin: Origin | None = None
        authority: bytes | None = None
        host_override: bytes | None = None
        group: UpstreamGroup | None = None
        try:
            if req.method == b"CONNECT":
                if forward is None:
                    await self._finish_body()
                    self._access(req, 405, 0, "-", 0.0, None)
                    return self._send_error(405, "CONNECT is not allowed (not a forward proxy)")
                return await self._connect(req)
            if not target.startswith(b"/") and target != b"*":
                # absolute-form: its authority is the host asked for, in both modes
                # (RFC 9112 §3.2.2: the received Host is ignored).
                scheme, host, port, authority, target = parse_absolute(target)
                if forward is not None:
                    forward.check(host, port)
                    origin = (scheme, host, port)
                    host_override = authority
            if origin is None:
                group = proxy._catch_all or proxy.route(
                    authority or req.headers.get(b"host"), target)
                if group is None:
                    await self._finish_body()
                    self._access(req, 404, 0, "-", 0.0, None)
                    return self._send_error(404, "No route for this request")
        except ForwardDenied as exc:
            await self._finish_body()
            self._access(req, 403, 0, "-", 0.0, None)
            return self._send_error(403, f"Forbidden: {exc}")
        except BadForwardTarget as exc:
            await self._finish_body()
            self._access(req, 400, 0, "-", 0.0, None)
            return self._send_error(400, f"Bad request: {exc}")

        has_body = hop.request_has_body(req)
        now = time.monotonic()
        upstream = group.pick(now) if group is not None else None
        up_auth = upstream.authority if upstream is not None else (authority or b"")
        try:
            outbound = hop.outbound_request(
                req, policy=cfg.headers, client_ip=self.client_ip, scheme="http",
                upstream_authority=up_auth, target=target, host=host_override,
                target_authority=authority, has_body=has_body,
            )
        except hop.RequestRefused as exc:
            self._access(req, 400, 0, "-", 0.0, None)
            return self._send_error(400, f"Bad request: {exc}", close=True)
        if proxy.request_hook is not None:
            replaced = await _maybe_await(proxy.request_hook(req, outbound))
            if replaced is not None:
                outbound = replaced

        if req.connection.options and req.connection.upgrade and not has_body:
            if not await self._finish_body():
                return False
            if upstream is not None:
                origin = upstream.origin
            assert origin is not None
            return await self._upgrade(req, outbound, origin, upstream)

        # Closures and their cells cost every request; only a body needs this state.
        upload = _Upload(self, req, outbound) if has_body else None

        # (``_finish_body``'s fast path inline: a bodiless request's end is parsed
        # with its head, so most requests need no coroutine for it.)
        if not has_body and type(end := self._next_nowait()) is not EndOfMessage and (
                not await self._finish_body(end)):
            return False
        att = _Attempt(req, outbound, target, group, upstream, origin, upload, time.monotonic())
        return await self._forward(att, cfg.timeouts.read)

    async def _forward(self, att: _Attempt, read_timeout: float | None,
                       conn: HTTPConnection | None = None, *, sent: bool = False) -> bool:
        """Send the request upstream, read the answer's head and relay it; retry or
        answer 502/504 when that fails.

        *conn*: the connection the callbacks took for it, with the request
        already written if *sent*; *read_timeout*: what is left of the
        upstream's time for this first try.
        """
        proxy = self.proxy
        cfg = proxy.config
        req, outbound, group, upstream, upload = (att.req, att.outbound, att.group,
                                                  att.upstream, att.upload)
        origin = att.origin
        t0 = att.t0
        tried: list[Upstream] = []
        retried = False
        fresh = False
        reused = True
        while True:
            if upstream is not None:
                origin = upstream.origin
            assert origin is not None
            label = upstream.label if upstream is not None else f"{origin[1]}:{origin[2]}"
            try:
                # The pool's synchronous fast path first: no coroutine for a warm pool.
                idle = conn if conn is not None or fresh else proxy.pool.acquire_idle(origin)
                if idle is not None:
                    conn, reused = idle, True
                else:
                    conn, reused = await proxy.pool.acquire(
                        origin, connect_timeout=cfg.timeouts.connect,
                        pool_timeout=cfg.timeouts.connect, fresh=fresh,
                    )
            except (ConnectError, ConnectTimeout, PoolTimeout) as exc:
                timed_out = not isinstance(exc, ConnectError)
                if upstream is not None and group is not None:
                    if not timed_out:
                        upstream.failed(time.monotonic())
                    tried.append(upstream)
                    if len(tried) < len(group.members):
                        nxt = group.pick(time.monotonic(), tried)
                        if nxt not in tried:
                            upstream = nxt
                            continue
                status = 504 if timed_out else 502
                self._access(req, status, 0, label, time.monotonic() - t0, None)
                if upload is not None and not upload.done:
                    return self._send_error(status, _reason(status, exc), close=True) and False
                return self._send_error(status, _reason(status, exc))
            try:
                if sent:
                    if conn.write_paused:
                        await conn.drain(cfg.timeouts.write)
                elif upload is not None:
                    await conn.send_request(outbound, upload.body(), cfg.timeouts.write,
                                            trailers=upload.trailers_up)
                elif conn.send_request_nowait(outbound):
                    await conn.drain(cfg.timeouts.write)
                self._waiting_upstream = self.core.their_state is not State.BODY
                if self._waiting_upstream and self._eof:
                    # The client shut its side before we got here: gone, as when it
                    # does so while we wait (see ``eof_received``).
                    raise ClientGone("client closed its side before the answer")
                try:
                    self._current = req
                    resp = await conn.read_response_head(
                        read_timeout, on_informational=self._on_informational)
                finally:
                    self._waiting_upstream = False
            except asyncio.CancelledError:
                conn.abort("client disconnected")
                raise
            except ClientGone:
                conn.abort("client disconnected")
                return False
            except BadRequestBody as exc:
                # The upstream got an incomplete message and is cut off: it never
                # sees a request whose framing the client broke.
                conn.abort("client sent a malformed body")
                self._access(req, exc.status, 0, label, time.monotonic() - t0, reused)
                self._send_error(exc.status, f"{reason_phrase(exc.status).decode()}: {exc}")
                return False
            except (ReadTimeout, WriteTimeout) as exc:
                body_done = upload is None or upload.done
                conn.abort("upstream timed out")
                self._access(req, 504, 0, label, time.monotonic() - t0, reused)
                return self._send_error(504, _reason(504, exc), close=not body_done) and body_done
            except (ClientError, ProtocolError, OSError) as exc:
                got = conn.bytes_received
                conn.abort(f"upstream failed: {exc}")
                body_done = upload is None or upload.done
                consumed = upload is not None and upload.consumed
                if (not retried and not consumed and is_retry_safe(
                        req.method, outbound.headers, reused, got, upload is None)):
                    retried = True
                    fresh = True
                    conn, sent, read_timeout = None, False, cfg.timeouts.read
                    log.info("retrying %s %s on a new upstream connection after: %s",
                             req.method.decode(), att.target.decode("latin-1"), exc)
                    continue
                if not reused and upstream is not None and not got:
                    upstream.failed(time.monotonic())
                self._access(req, 502, 0, label, time.monotonic() - t0, reused)
                if cfg.retry_non_idempotent_close and reused and not got:
                    self.abort()  # let the client retry itself, as HAProxy does
                    return False
                return self._send_error(502, _reason(502, exc), close=not body_done) and body_done
            break
        if upstream is not None and upstream.failures:
            upstream.succeeded()
        out = hop.outbound_response(resp, cfg.headers)
        if proxy.response_hook is not None:
            replaced = await _maybe_await(proxy.response_hook(resp, out))
            if replaced is not None:
                out = replaced
        relay = self._begin_relay(att, resp, out, conn, reused, label,
                                  upload is None or upload.done)
        if not isinstance(relay, _Relay):
            return relay
        return await self._relay_rest(relay)

    def _begin_relay(self, att: _Attempt, resp: Response, out: Response, conn: HTTPConnection,
                     reused: bool, label: str, body_done: bool) -> _Relay | bool:
        """Frame the head of *out* for the client; if it cannot go, answer 502 instead and
        return whether the client connection may persist."""
        t_up = time.monotonic() - att.t0
        if not body_done:
            # The upstream answered before the whole request body arrived: the
            # rest cannot be skipped safely, so the client connection ends after.
            out = Response(out.status_code, out.headers, out.reason,
                           ConnectionInfo(["close"]))
        try:
            head = self.core.send(out)
        except LocalProtocolError as exc:
            conn.abort(f"response cannot be forwarded: {exc}")
            self._access(att.req, 502, 0, label, t_up, reused)
            return self._send_error(502, f"Bad gateway: upstream response cannot be forwarded "
                                         f"({exc})") and body_done
        return _Relay(self, att.req, resp, conn, reused, label, t_up, body_done, head)

    async def _relay_rest(self, relay: _Relay) -> bool:
        """Relay the rest of the response, waiting for the upstream and for the client
        to drain; return whether the client connection may persist."""
        conn = relay.conn
        read_timeout = self.proxy.config.timeouts.read
        try:
            while (state := relay.gather()) is not _DONE:
                relay.flush()
                if self.flow.write_paused:
                    await self.flow.drain()
                    state = _FULL  # (the upstream may have sent more meanwhile: look first)
                if self.lost:
                    raise ClientGone("client disconnected mid-response")
                if state is NEED_DATA:
                    await conn.wait_data(read_timeout)
            relay.flush()
        except BaseException as exc:
            keep = self._relay_failed(relay, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return keep
        return self._relay_done(relay)

    def _relay_failed(self, relay: _Relay, exc: BaseException) -> bool:
        """Mid-body failure: the head is out, so the only honest signal is to cut the
        client connection (RFC 9112 §8: an incomplete message)."""
        relay.conn.abort(f"response relay failed: {exc!r}")
        self._access(relay.req, relay.resp.status_code, relay.nbytes, relay.label, relay.t_up,
                     relay.reused)
        self.abort()
        return False

    def _relay_done(self, relay: _Relay) -> bool:
        """The whole response is out: give the upstream connection back; return whether
        the client connection may persist."""
        proxy = self.proxy
        relay.conn.finish_exchange(relay.resp)
        proxy.pool.release(relay.conn)
        if proxy.log_access:
            self._access(relay.req, relay.resp.status_code, relay.nbytes, relay.label,
                         relay.t_up, relay.reused)
        else:
            proxy.requests += 1
        return relay.body_done and not self.core.must_close

    def _end_response(self, end: EndOfMessage, nominated: frozenset[bytes]) -> bytes:
        """The bytes ending the client's response, with the upstream's trailer fields
        when they may go on: minus hop-by-hop ones, and only when the client's
        response is chunked (RFC 9112 §7.1.2: only chunked carries trailers; to
        an HTTP/1.0 client or under Content-Length they are dropped, which
        RFC 9110 §6.5.1 allows: trailers can be discarded)."""
        core = self.core
        if end.trailers:
            fields = hop.forward_trailers(end.trailers, nominated)
            if fields:
                with contextlib.suppress(LocalProtocolError):  # not chunked: state unchanged
                    return core.send(EndOfMessage(fields))
        return core.send(_END)

    def _on_informational(self, info: InformationalResponse) -> None:
        self._relay_informational(self._current, info)

    def _relay_informational(self, req: Request, info: InformationalResponse) -> None:
        """Forward an upstream 1xx (e.g. 103 Early Hints) to the client (RFC 9110 §15.2).

        "A proxy MUST forward 1xx responses unless the proxy itself requested
        the generation of the 1xx response", but "a server MUST NOT send a 1xx
        response to an HTTP/1.0 client": those are dropped. ``100 Continue`` is
        dropped too: the proxy answers ``Expect`` itself (it sends its own 100
        when it starts reading the body, and never forwards ``Expect``), so an
        upstream 100 answers no expectation of the client's. 101 never comes
        here: upgrades take their own path.
        """
        status = info.status_code
        if status in (100, 101) or req.http_version == b"1.0" or self.lost:
            return
        transport = self.transport
        if transport is None:
            return
        try:
            head = self.core.send(hop.outbound_informational(info, self.proxy.config.headers))
        except LocalProtocolError as exc:
            log.info("client %s: %d not relayed: %s", self.client, status, exc)
            return
        transport.write(head)

    # --- upgrade and CONNECT ------------------------------------------------------------------

    async def _open_raw(self, host: str, port: int) -> tuple[asyncio.StreamReader,
                                                             asyncio.StreamWriter]:
        async with asyncio.timeout(self.proxy.config.timeouts.connect):
            return await asyncio.open_connection(host, port, limit=65536)

    async def _upgrade(self, req: Request, outbound: Request, origin: Origin,
                       upstream: Upstream | None) -> bool:
        """Forward an Upgrade offer as a real upgrade; on 101, tunnel bytes (RFC 9110 §7.8)."""
        cfg = self.proxy.config
        label = f"{origin[1]}:{origin[2]}"
        t0 = time.monotonic()
        offer = b", ".join(req.connection.upgrade)
        outbound = Request(outbound.method, outbound.target, outbound.headers,
                           ConnectionInfo(["upgrade"], [(b"Upgrade", offer)]), b"1.1")
        try:
            reader, writer = await self._open_raw(origin[1], origin[2])
        except (OSError, TimeoutError) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            if upstream is not None and status == 502:
                upstream.failed(time.monotonic())
            self._access(req, status, 0, label, time.monotonic() - t0, False)
            return self._send_error(status, _reason(status, exc))
        ucore = Connection(Role.CLIENT)
        endpoint = StreamEndpoint(reader, writer)
        try:
            writer.write(ucore.send(outbound) + ucore.send(EndOfMessage()))
            while True:
                event = ucore.next_event()
                if event is NEED_DATA:
                    async with asyncio.timeout(cfg.timeouts.read):
                        data = await reader.read(65536)
                    ucore.receive_data(data)
                    continue
                if type(event) is InformationalResponse and event.status_code == 101:
                    break
                if type(event) is InformationalResponse:
                    self._relay_informational(req, event)
                    continue
                if type(event) is Response:
                    return await self._relay_raw(req, event, ucore, endpoint, label, t0)
                raise ServerDisconnected("upstream closed without answering the upgrade")
        except asyncio.CancelledError:
            endpoint.close()
            raise
        except (TimeoutError, OSError, ProtocolError, ClientError) as exc:
            endpoint.close()
            status = 504 if isinstance(exc, TimeoutError) else 502
            self._access(req, status, 0, label, time.monotonic() - t0, False)
            return self._send_error(status, _reason(status, exc))
        fields = list(event.headers.fields)
        fields.append((b"via", b"Via", b"1.1 " + cfg.headers.via.encode("latin-1")))
        upg = event.connection.fields.get_all(b"upgrade") or [offer]
        switch = InformationalResponse(101, Headers._trusted(fields), event.reason,
                                       ConnectionInfo(["upgrade"], [(b"Upgrade", upg[0])]))
        try:
            head = self.core.send(switch)
        except LocalProtocolError as exc:
            endpoint.close()
            self._access(req, 502, 0, label, time.monotonic() - t0, False)
            return self._send_error(502, _reason(502, exc), close=True) and False
        assert self.transport is not None
        self.transport.write(head)
        self._enter_tunnel()
        early, _ = ucore.trailing_data
        if early:
            self.transport.write(early)
        self._access(req, 101, 0, label, time.monotonic() - t0, False)
        await splice(self, endpoint, None)
        return False

    async def _relay_raw(self, req: Request, resp: Response, ucore: Connection,
                         endpoint: StreamEndpoint, label: str, t0: float) -> bool:
        """Relay a non-101 answer to an Upgrade offer from a one-off upstream connection."""
        try:
            out = hop.outbound_response(resp, self.proxy.config.headers)
            assert self.transport is not None
            self.transport.write(self.core.send(out))
            nbytes = 0
            while True:
                event = ucore.next_event()
                if event is NEED_DATA:
                    async with asyncio.timeout(self.proxy.config.timeouts.read):
                        ucore.receive_data(await endpoint.reader.read(65536))
                    continue
                if type(event) is Data:
                    nbytes += len(event.data)
                    self.transport.write(self.core.send(event))
                    await self.flow.drain()
                    continue
                break
            end = event if type(event) is EndOfMessage else _END
            self.transport.write(self._end_response(end, resp.connection.options))
        except (TimeoutError, OSError, ProtocolError) as exc:
            log.info("upgrade refusal relay failed: %s", exc)
            self.abort()
            return False
        finally:
            endpoint.close()
        self._access(req, resp.status_code, nbytes, label, time.monotonic() - t0, False)
        return not self.core.must_close

    async def _connect(self, req: Request) -> bool:
        """CONNECT (RFC 9110 §9.3.6): check the allow-list, open TCP, answer 200, tunnel."""
        forward = self.proxy.config.forward
        assert forward is not None
        t0 = time.monotonic()
        if not await self._finish_body():
            return False
        try:
            host, port = split_authority(req.target, 443)
            forward.check(host, port, connect=True)
        except BadForwardTarget as exc:
            self._access(req, 400, 0, "-", 0.0, None)
            return self._send_error(400, f"Bad request: {exc}")
        except ForwardDenied as exc:
            self._access(req, 403, 0, "-", 0.0, None)
            return self._send_error(403, f"Forbidden: {exc}")
        label = f"{host}:{port}"
        try:
            reader, writer = await self._open_raw(host, port)
        except (OSError, TimeoutError) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            self._access(req, status, 0, label, time.monotonic() - t0, None)
            return self._send_error(status, _reason(status, exc))
        via = b"1.1 " + self.proxy.config.headers.via.encode("latin-1")
        head = self.core.send(Response(200, [(b"Via", via)]))
        assert self.transport is not None
        self.transport.write(head)
        self._enter_tunnel()
        self._access(req, 200, 0, label, time.monotonic() - t0, False)
        await splice(self, StreamEndpoint(reader, writer), None)
        return False


class _Attempt:
    """A request on its way upstream: what a task needs to go on where the callbacks stopped."""

    __slots__ = ("group", "origin", "outbound", "req", "t0", "target", "upload", "upstream")

    def __init__(self, req: Request, outbound: Request, target: bytes,
                 group: UpstreamGroup | None, upstream: Upstream | None, origin: Origin | None,
                 upload: _Upload | None, t0: float) -> None:
        self.req = req
        self.outbound = outbound
        #: The target as forwarded (origin-form), for the log.
        self.target = target
        self.group = group
        self.upstream = upstream
        self.origin = origin
        self.upload = upload
        self.t0 = t0


#: What :meth:`_Relay.gather` says: the end is framed, or write out before gathering more.
_DONE: Final = object()
_FULL: Final = object()


class _Relay:
    """A response on its way from an upstream connection to the client.

    Everything already received (head, body, end) leaves in one write: a small
    response costs one system call, not three. What must wait for the upstream
    is written first, and at most ``_FLUSH`` bytes gather.
    """

    __slots__ = ("body_done", "conn", "inbound", "label", "nbytes", "parts", "pending", "req",
                 "resp", "reused", "t_up")

    def __init__(self, inbound: _Inbound, req: Request, resp: Response, conn: HTTPConnection,
                 reused: bool, label: str, t_up: float, body_done: bool, head: bytes) -> None:
        self.inbound = inbound
        self.req = req
        self.resp = resp
        self.conn = conn
        self.reused = reused
        self.label = label
        self.t_up = t_up
        #: The whole request went upstream (else the client connection ends after).
        self.body_done = body_done
        self.parts = [head]
        self.pending = len(head)
        #: Content bytes relayed (for the access log).
        self.nbytes = 0

    def gather(self) -> object:
        """Frame what the upstream sent so far for the client; return ``_DONE`` (the end
        is framed), ``NEED_DATA`` (wait for the upstream) or ``_FULL`` (write out first).

        Raises:
            RemoteProtocolError: the upstream broke the protocol mid-body.
            ServerDisconnected: an event no body has.
        """
        # The upstream core's events directly (what ``read_body_event_nowait`` would
        # return, minus two calls and a re-wrapped ``Data`` per piece).
        ucore = self.conn.core
        core = self.inbound.core
        parts = self.parts
        while self.pending < _FLUSH:
            event = ucore.next_event()
            if type(event) is Data:
                self.nbytes += len(event.data)
                data = core.send(event)
                parts.append(data)
                self.pending += len(data)
            elif type(event) is EndOfMessage:
                trailers = event.trailers
                parts.append(core.send(_END) if trailers is EMPTY_HEADERS or not trailers else
                             self.inbound._end_response(event, self.resp.connection.options))
                return _DONE
            elif event is NEED_DATA:
                return NEED_DATA
            else:
                raise ServerDisconnected(f"unexpected event {event!r}")
        return _FULL

    def flush(self) -> None:
        """Write what was gathered."""
        parts = self.parts
        if parts:
            transport = self.inbound.transport
            assert transport is not None
            transport.write(parts[0] if len(parts) == 1 else b"".join(parts))
            self.parts = []
            self.pending = 0


class _Upload:
    """A request body streaming from the client to the upstream, and what it did."""

    __slots__ = ("consumed", "done", "inbound", "outbound", "req", "trailers")

    def __init__(self, inbound: _Inbound, req: Request, outbound: Request) -> None:
        self.inbound = inbound
        self.req = req
        self.outbound = outbound
        #: Some body bytes were read (and may have gone upstream): no retry.
        self.consumed = False
        #: The whole body was read.
        self.done = False
        self.trailers: Headers | None = None

    async def body(self) -> AsyncIterator[bytes]:
        inbound = self.inbound
        if self.req.expects_continue and inbound.transport is not None:
            inbound.transport.write(inbound.core.send(InformationalResponse(100)))
        read_timeout = inbound.proxy.config.timeouts.read
        while True:
            try:
                event = await inbound.next_event(read_timeout)
            except RemoteProtocolError as exc:
                raise BadRequestBody(exc) from exc
            if type(event) is Data:
                self.consumed = True
                yield event.data
            elif type(event) is EndOfMessage:
                self.done = True
                if event.trailers:
                    self.trailers = event.trailers
                return
            else:
                raise ClientGone("client closed during the request body")

    def trailers_up(self) -> Headers:
        """The client's trailer fields minus hop-by-hop ones (RFC 9110 §6.5), if any
        and if the upstream request is chunked (only chunked carries them)."""
        if self.trailers is None or not hop.request_is_chunked(self.outbound):
            return _NO_FIELDS
        return hop.forward_trailers(
            self.trailers, self.req.connection.options,
            underscores=self.inbound.proxy.config.headers.underscores is hop.Underscores.PASS)


def _reason(status: int, exc: BaseException) -> str:
    if status == 504:
        return f"Gateway timeout: the upstream did not answer in time ({exc})"
    return f"Bad gateway: {exc}"
