"""One client connection: bytes from the transport through the core to ASGI cycles.

:class:`HttpProtocol` owns the transport, the core :class:`Connection` and the
timers; everything runs on the event loop's thread, so no locks. Requests are
answered one at a time, in order: the core yields the next pipelined request
only after the previous response's end was sent (RFC 9112 §9.3.2). Persistence
is decided by the core alone (RFC 9112 §9.3); this layer only adds ``close``
when it wants the connection to end (request limit, shutdown) and announces
the idle timer in ``Keep-Alive`` (RFC 7230 §A.1.2).
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from onehop._aio import FlowControl, LazyTimer
from onehop.core import (
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    ConnectionInfo,
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
    Request,
    Response,
    Role,
    split_headers,
)
from onehop.core.headers import NO_CONNECTION_INFO
from onehop.core.target import parse_absolute_form
from onehop.errors import IncompleteMessage, InvalidRequestTarget, RemoteProtocolError

if TYPE_CHECKING:
    from onehop.server.config import ASGIApp, Config, Message
    from onehop.server.server import ServerState

logger: Final = logging.getLogger("onehop.server")
access_logger: Final = logging.getLogger("onehop.access")

#: Request body bytes buffered for the app before reading pauses (as uvicorn).
BODY_HIGH_WATER: Final = 64 * 1024
#: Unparsed bytes (pipelined requests) buffered before reading pauses.
PIPELINE_HIGH_WATER: Final = 64 * 1024

_CLOSE_OPTION: Final = frozenset({b"close"})
_DROP_FROM_APP: Final = frozenset(
    {b"connection", b"transfer-encoding", b"keep-alive", b"proxy-connection"}
)
_ASGI: Final = {"version": "3.0", "spec_version": "2.4"}
#: Response header lists validated and split per distinct app header list (and Date
#: second); cleared when it grows past this many entries.
_HEAD_CACHE_SIZE: Final = 256


class _DateCache:
    """The ``Date`` field value, formatted once per second (RFC 9110 §6.6.1)."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return self._value


DATE: Final = _DateCache()


class _HeadCache:
    """App header lists already validated and split by the core, keyed by their value.

    Most apps send the same header list on every response (hello world, JSON
    endpoints differing only in Content-Length), so :func:`split_headers`
    validates each distinct list once per ``Date`` second instead of once per
    response. The cached :class:`Headers` are read-only, shared by responses.
    Owned by one server; touched only from its loop.
    """

    __slots__ = ("_date", "_entries")

    def __init__(self) -> None:
        self._date = b""
        self._entries: dict[Any, tuple[Headers, ConnectionInfo]] = {}

    def split(
        self, app_headers: Any, server: bool, date: bool
    ) -> tuple[Headers, ConnectionInfo]:
        """Return ``split_headers`` of our Server/Date fields plus *app_headers*."""
        today = DATE.get()
        if today is not self._date:
            self._date = today
            self._entries.clear()
        try:
            key: Any = (server, date, *app_headers)
            hit = self._entries.get(key)
        except TypeError:  # unhashable pairs (lists): no caching
            key = hit = None
        if hit is not None:
            return hit
        fields: list[tuple[bytes, bytes]] = []
        if server or date:
            for name, _ in app_headers:
                lname = name.lower()
                if lname == b"server":
                    server = False
                elif lname == b"date":
                    date = False
            if server:
                fields.append((b"Server", b"onehop"))
            if date:
                fields.append((b"Date", today))
        fields.extend(app_headers)
        result = split_headers(fields)
        if key is not None:
            if len(self._entries) >= _HEAD_CACHE_SIZE:
                self._entries.clear()
            self._entries[key] = result
        return result


#: The response's end (no trailers); events are never mutated, so one instance serves all.
_END: Final = EndOfMessage()

#: Empty ``onehop.connection`` extension values, shared when a request has no options.
_NO_OPTIONS: Final[list[bytes]] = []
_NO_FIELDS: Final[list[tuple[bytes, bytes]]] = []
#: Method names already decoded (the ASGI ``method`` is a str).
_METHODS: Final = {
    m: m.decode("ascii")
    for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT")
}
_EMPTY_OPTIONS: Final[frozenset[bytes]] = frozenset()
#: The ``connection`` of a response that only adds ``close`` (read-only, shared).
_CLOSE_CONNINFO: Final = ConnectionInfo(options=_CLOSE_OPTION)
#: Shared ``connection`` parts that only announce ``Keep-Alive``, by (timeout, requests
#: left); cleared past this many (see ``HttpProtocol.keep_alive_info``).
_KEEP_ALIVE_INFOS: Final[dict[tuple[int, int], ConnectionInfo]] = {}
_KEEP_ALIVE_INFOS_SIZE: Final = 4096


def _error_response(status: int, text: str) -> tuple[Response, bytes]:
    body = text.encode("latin-1", "replace") + b"\n"
    headers = [
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", b"%d" % len(body)),
        (b"Date", DATE.get()),
    ]
    return Response(status, headers, connection=ConnectionInfo(options=_CLOSE_OPTION)), body


class HttpProtocol(asyncio.Protocol):
    """The server side of one connection (RFC 9112 §9).

    Owns: ``transport``, ``conn`` (the core), ``cycle`` (the request being
    answered, or whose body is still arriving after its response), and the
    one timer (idle keep-alive or header read) in ``_timer``.
    """

    def __init__(self, config: Config, state: ServerState, app: ASGIApp) -> None:
        self.config = config
        self.state = state
        self.app = app
        self.loop = asyncio.get_running_loop()
        self.conn = Connection(
            Role.SERVER,
            limits=config.limits,
            keep_alive=config.keep_alive,
            http10_keep_alive=config.http10_keep_alive,
        )
        self.transport: asyncio.Transport | None = None
        self.flow = FlowControl()
        self.cycle: RequestCycle | None = None
        self.server_addr: tuple[str, int] | None = None
        self.client_addr: tuple[str, int] | None = None
        self.requests = 0
        self.read_paused = False
        self.closing = False
        self.lingering = False
        self.eof = False
        # One lazily re-armed timer serves every kind (``_timer_kind``), so a
        # keep-alive request costs no timer churn.
        self._timer = LazyTimer(self.loop, self._timer_fired)
        self._timer_kind = ""

    # --- transport callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.state.connections.add(self)
        self.server_addr = _addr(transport.get_extra_info("sockname"))
        self.client_addr = _addr(transport.get_extra_info("peername"))
        if self.state.shutting_down:
            transport.close()
            return
        self._set_timer("idle")

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self._drop_timer()
        self.closing = True
        self.flow.close()
        cycle = self.cycle
        if cycle is not None:
            cycle.disconnected = True
            cycle.wake()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # RFC 9112 §9.6: read and discard until the peer sees our close
        self.conn.receive_data(data)
        self._handle_events()

    def eof_received(self) -> bool | None:
        self.eof = True
        if self.lingering:
            return False
        self.conn.receive_data(b"")
        self._handle_events()
        # Keep our write side open while a response is still owed.
        return self.cycle is not None and not self.closing

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # --- reading ------------------------------------------------------------------------------

    def _handle_events(self) -> None:
        """Pull events from the core until it needs bytes or waits on our response."""
        conn = self.conn
        while not self.closing:
            try:
                event = conn.next_event()
            except IncompleteMessage:
                self._client_gone()
                return
            except RemoteProtocolError as exc:
                self._protocol_error(exc.status_hint, exc.msg)
                return
            kind = type(event)
            if kind is Data:
                cycle = self.cycle
                assert cycle is not None
                cycle.feed(event.data)  # type: ignore[union-attr]
                if cycle.body_size > BODY_HIGH_WATER:
                    self._pause_reading()
                    return
            elif kind is EndOfMessage:
                cycle = self.cycle
                assert cycle is not None
                if self._timer_kind == "body":
                    self._cancel_timer()
                cycle.feed_end()
                if cycle.response_complete:
                    self.cycle = None  # the body outlived its response: keep going
            elif kind is Request:
                self._start_cycle(event)  # type: ignore[arg-type]
            elif event is NEED_DATA:
                cycle = self.cycle
                if cycle is None:
                    if self._timer_kind != "header" and conn.buffered:
                        self._set_timer("header")
                elif not cycle.body_complete and self.config.body_timeout is not None:
                    self._set_timer("body")  # restarted by every piece that arrives
                return
            elif event is PAUSED:
                if conn.must_close:
                    if self.cycle is None:
                        self._close()
                elif conn.buffered > PIPELINE_HIGH_WATER:
                    self._pause_reading()
                return
            elif kind is ConnectionClosed:
                if self.cycle is None:
                    self._close()
                return
            else:  # pragma: no cover - the core yields nothing else to a server
                return

    def _start_cycle(self, request: Request) -> None:
        self._cancel_timer()
        self.requests += 1
        state = self.state
        state.total_requests += 1
        config = self.config
        limit = config.limit_max_requests
        if limit is not None and state.total_requests >= limit:
            state.request_exit()
        try:
            cycle = RequestCycle(self, request)
        except InvalidRequestTarget as exc:
            self._protocol_error(exc.status_hint, f"Bad Request: {exc}")
            return
        self.cycle = cycle
        concurrency = config.limit_concurrency
        app = self.app
        tasks = state.tasks
        if concurrency is not None and (
            len(state.connections) > concurrency or len(tasks) >= concurrency
        ):
            app = _service_unavailable
        elif request.method == b"CONNECT" and not config.connect_to_app:
            app = _connect_not_implemented
        # The cycle drops its task from ``tasks`` when run() ends (no done callback:
        # that would cost one more loop callback per request).
        task = self.loop.create_task(cycle.run(app))
        cycle.task = task
        tasks.add(task)

    def _pause_reading(self) -> None:
        if self._timer_kind == "body":
            self._cancel_timer()  # the app is slow, not the client
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Let bytes flow again (the app consumed the body, or a response ended)."""
        if self.read_paused and not self.closing and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()
            # Events may already be parsed-ready in the core (e.g. the body's end arrived
            # with the chunk that made us pause): no new bytes would ever pull them out.
            self._handle_events()

    # --- responses ----------------------------------------------------------------------------

    def wants_close(self) -> bool:
        """Whether the response being started must carry ``close`` (limit or shutdown)."""
        limit = self.config.max_requests_per_connection
        return self.state.shutting_down or (limit is not None and self.requests >= limit)

    def keep_alive_info(self) -> ConnectionInfo:
        """A ``connection`` part announcing the ``Keep-Alive`` hint, from the real timers.

        Shared per (timeout, requests left) and serialized once by the core: the
        hint changes on every response of a connection, but every connection
        goes through the same few values.
        """
        timeout = int(self.config.timeout_keep_alive)
        limit = self.config.max_requests_per_connection
        left = -1 if limit is None else limit - self.requests
        info = _KEEP_ALIVE_INFOS.get((timeout, left))
        if info is None:
            if len(_KEEP_ALIVE_INFOS) >= _KEEP_ALIVE_INFOS_SIZE:
                _KEEP_ALIVE_INFOS.clear()
            value = b"timeout=%d" % timeout if left < 0 else b"timeout=%d, max=%d" % (
                timeout, left)
            info = _KEEP_ALIVE_INFOS[timeout, left] = ConnectionInfo._trusted(
                _EMPTY_OPTIONS, [(b"keep-alive", b"Keep-Alive", value)]
            )
        return info

    def response_complete(self, cycle: RequestCycle) -> None:
        """The cycle's final byte was handed to the transport."""
        config = self.config
        if config.access_log and access_logger.isEnabledFor(logging.INFO):
            self._log_access(cycle)
        conn = self.conn
        if conn.must_close or self.state.shutting_down:
            self._close()
            return
        if cycle.body_complete and self.cycle is cycle:
            self.cycle = None
        self._timer_kind = "idle"
        self._timer.arm(config.timeout_keep_alive)
        if self.read_paused:
            self.resume_reading()  # also pulls the next pipelined request
        elif conn.buffered or self.eof or self.cycle is not None:
            self._handle_events()
        # else: nothing buffered and nothing owed: the next bytes will drive the core.

    def _log_access(self, cycle: RequestCycle) -> None:
        client = f"{self.client_addr[0]}:{self.client_addr[1]}" if self.client_addr else "-"
        req = cycle.request
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d', client, req.method.decode("latin-1"),
            req.target.decode("latin-1"), req.http_version.decode("latin-1"), cycle.status,
        )

    def _protocol_error(self, status: int, text: str) -> None:
        """Answer a malformed request with the core's status and close (RFC 9112 §2.2)."""
        cycle = self.cycle
        if cycle is not None:
            if cycle.response_started:
                self.abort()
                return
            cycle.disconnected = True
            cycle.wake()
        self.cycle = None
        response, body = _error_response(status, text)
        try:
            head = self.conn.send(response)
            tail = self.conn.send(Data(body)) + self.conn.send(EndOfMessage())
        except Exception:  # the core refused: nothing sensible left to say
            self.abort()
            return
        if self.transport is not None:
            self.transport.write(head + tail)
        self._close()

    def _client_gone(self) -> None:
        cycle = self.cycle
        if cycle is not None:
            cycle.disconnected = True
            cycle.wake()
        self.abort()

    # --- timers and closing -------------------------------------------------------------------

    def _set_timer(self, kind: str) -> None:
        """Arm the one timer: ``idle`` (keep-alive), ``header`` or ``body`` (read timeouts)."""
        config = self.config
        if kind == "idle":
            delay = config.timeout_keep_alive
        elif kind == "header":
            delay = config.header_timeout
        else:
            delay = config.body_timeout or 0.0
        self._timer_kind = kind
        self._timer.arm(delay)

    def _cancel_timer(self) -> None:
        # Lazy: the pending handle fires as a no-op (cheaper than cancel + re-arm per request).
        self._timer_kind = ""
        self._timer.disarm()

    def _drop_timer(self) -> None:
        self._timer_kind = ""
        self._timer.cancel()

    def _timer_fired(self) -> None:
        kind, self._timer_kind = self._timer_kind, ""
        if not kind or self.closing:
            return
        cycle = self.cycle
        if kind == "body":
            if cycle is None or cycle.body_complete:
                return
            if not cycle.response_started:
                self._protocol_error(408, "Request Timeout: the request body took too long")
            elif cycle.response_complete:
                self._close()  # the answer is out; stop waiting for the rest of the body
            else:
                cycle.disconnected = True
                cycle.wake()
                self.abort()
            return
        if cycle is not None:
            return
        if kind == "header" and self.conn.buffered:
            self._protocol_error(408, "Request Timeout: the request head took too long")
        else:
            self._close()

    def shutdown(self) -> None:
        """Graceful shutdown: idle connections close now, busy ones after their response."""
        if self.cycle is None:
            self._close()
        # else: wants_close() now adds ``close`` to the response; response_complete closes.

    def _close(self) -> None:
        """End the connection; linger when the client may still be sending (RFC 9112 §9.6)."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        self._drop_timer()
        transport = self.transport
        unread = self.conn.buffered or (self.cycle is not None and not self.cycle.body_complete)
        if self.eof or not unread or not transport.can_write_eof():
            transport.close()
            return
        # Shut our write side so the client reads the whole response, then discard
        # its input for a bounded time instead of resetting the connection.
        self.lingering = True
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        transport.write_eof()
        self.loop.call_later(self.config.linger_timeout, transport.close)

    def abort(self) -> None:
        """Cut the connection at once (app failed mid-response, or grace period over)."""
        self.closing = True
        self._drop_timer()
        if self.transport is not None:
            self.transport.abort()


class RequestCycle:
    """One request and its response: the ASGI ``receive``/``send`` pair.

    Owns the request body queue (``body``) filled by the protocol and drained
    by ``receive``; ``_event`` wakes a ``receive`` waiting for body or disconnect.
    """

    __slots__ = (
        "_event",
        "body",
        "body_complete",
        "body_delivered",
        "body_size",
        "conn",
        "disconnected",
        "head",
        "protocol",
        "request",
        "response_complete",
        "response_started",
        "scope",
        "status",
        "task",
        "wants_continue",
    )

    def __init__(self, protocol: HttpProtocol, request: Request) -> None:
        self.protocol = protocol
        self.conn = protocol.conn
        self.request = request
        self.body: list[bytes] = []
        self.body_size = 0
        self.body_complete = False
        self.body_delivered = False
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        # Whether 100 Continue may still be owed; request.expects_continue is only
        # looked at when the app first calls receive() (most requests never do).
        self.wants_continue = True
        self.head = b""
        self.status = 0
        self._event: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self.scope = self._build_scope(request)

    def _build_scope(self, request: Request) -> dict[str, Any]:
        """The ASGI ``http`` scope for *request*.

        Raises:
            InvalidRequestTarget: an absolute-form target of a scheme other than
                http(s), which no origin server can serve (answered 400).
        """
        protocol = self.protocol
        config = protocol.config
        target = request.target
        headers = [(f[0], f[2]) for f in request.headers._fields]  # (lower_items, inlined)
        if target[:1] != b"/" and target != b"*" and request.method != b"CONNECT":
            # absolute-form (RFC 9112 §3.2.2): "the origin server MUST ignore the received
            # Host header field (if any) and instead use the host information of the
            # request-target", so the app sees the target's authority as ``host``.
            absolute = parse_absolute_form(target)
            if absolute is None:
                raise InvalidRequestTarget(
                    f"cannot serve a {target.partition(b':')[0].decode('latin-1')!r} URI")
            target = absolute.origin_form
            headers = [(b"host", absolute.authority), *(h for h in headers if h[0] != b"host")]
        raw_path, _, query = target.partition(b"?")
        path = raw_path.decode("ascii", "replace")
        if "%" in path:
            path = unquote(path)
        conninfo = request.connection
        if conninfo.fields:
            conn_fields = conninfo.fields.lower_items()
            headers += conn_fields
            connection = {"options": sorted(conninfo.options), "fields": conn_fields}
        else:
            connection = {"options": _NO_OPTIONS, "fields": _NO_FIELDS}  # empties: apps read
        method = request.method
        root_path = config.root_path
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": "1.1" if request.http_version == b"1.1" else "1.0",
            "server": protocol.server_addr,
            "client": protocol.client_addr,
            "scheme": "http",
            "method": _METHODS.get(method) or method.decode("ascii"),
            "root_path": root_path,
            "path": root_path + path if root_path else path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
            "state": protocol.state.lifespan_state.copy(),
            "extensions": {"onehop.connection": connection},
        }
        if config.proxy_headers:
            _apply_proxy_headers(scope, config.forwarded_allow_ips)
        return scope

    # --- fed by the protocol ------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.response_complete:
            return  # the app answered without reading: discard the rest
        self.body.append(data)
        self.body_size += len(data)
        self.wake()

    def feed_end(self) -> None:
        self.body_complete = True
        self.wake()

    def wake(self) -> None:
        if self._event is not None:
            self._event.set()

    # --- ASGI ---------------------------------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        """Run the app for this request; answer 500 or abort if it fails."""
        protocol = self.protocol
        try:
            try:
                await app(self.scope, self.receive, self.send)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    raise
                if not self.disconnected:
                    logger.error("Exception in ASGI application", exc_info=exc)
                if not self.response_started:
                    self._send_500()
                elif not self.response_complete:
                    protocol.abort()  # the head is out: only cutting tells the client
            else:
                if self.disconnected:
                    return
                if not self.response_started:
                    logger.error("ASGI application returned without starting a response")
                    self._send_500()
                elif not self.response_complete:
                    logger.error("ASGI application returned without completing the response")
                    protocol.abort()
        finally:
            task = self.task
            if task is not None:
                protocol.state.tasks.discard(task)

    def _send_500(self) -> None:
        if self.disconnected or self.protocol.closing:
            return
        response, body = _error_response(500, "Internal Server Error")
        try:
            data = self.conn.send(response) + self.conn.send(Data(body))
            data += self.conn.send(EndOfMessage())
        except Exception:
            self.protocol.abort()
            return
        self.response_started = self.response_complete = True
        self.status = 500
        self.wake()
        transport = self.protocol.transport
        if transport is not None:
            transport.write(data)
        self.protocol.response_complete(self)

    async def receive(self) -> Message:
        if self.wants_continue:
            self.wants_continue = False
            if (
                not self.response_started
                and not self.body_complete
                and not self.disconnected
                and self.request.expects_continue
            ):
                # RFC 9110 §10.1.1: 100 only once the app asks for the content.
                data = self.conn.send(InformationalResponse(100))
                transport = self.protocol.transport
                if transport is not None:
                    transport.write(data)
        while True:
            if self.disconnected or self.response_complete:
                return {"type": "http.disconnect"}
            if self.body or (self.body_complete and not self.body_delivered):
                body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
                self.body.clear()
                self.body_size = 0
                more = not self.body_complete
                if more:
                    self.protocol.resume_reading()
                else:
                    self.body_delivered = True
                return {"type": "http.request", "body": body, "more_body": more}
            self.protocol.resume_reading()
            if self._event is None:
                self._event = asyncio.Event()
            self._event.clear()
            await self._event.wait()

    async def send(self, message: Message) -> None:
        protocol = self.protocol
        if protocol.flow.write_paused:
            await protocol.flow.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            self.status = message["status"]
            # Started only once the core took the head: a head it refuses (say, a 204
            # with content) leaves nothing written, so the app's error can still be a 500.
            self.head = self.conn.send(self._response(message))
            self.response_started = True
            # Coalesce the head with the first body chunk when it comes in the same
            # loop iteration; flush it on its own otherwise (streaming apps). One
            # callback per loop iteration flushes the heads of every connection.
            pending = protocol.state.pending_heads
            if not pending:
                protocol.loop.call_soon(_flush_heads, pending)
            pending.append(self)
            return
        if self.response_complete:
            raise RuntimeError(f"unexpected {kind!r}: the response is complete")
        if kind != "http.response.body":
            raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        conn = self.conn
        out = conn.send(Data(body)) if body else b""
        if not more:
            out += conn.send(_END)
            self.response_complete = True
        if self.head:
            out = self.head + out
            self.head = b""
        transport = protocol.transport
        if transport is not None and out:
            transport.write(out)
        if not more:
            if self._event is not None:
                self._event.set()  # (wake, inlined)
            protocol.response_complete(self)

    def _flush_head(self) -> None:
        head, self.head = self.head, b""
        transport = self.protocol.transport
        if head and transport is not None and not self.protocol.closing:
            transport.write(head)

    def _response(self, message: Message) -> Response:
        """Build the core's Response from the app's; hop-by-hop fields go to ``connection``.

        Raises:
            RuntimeError: a 2xx answer to CONNECT (an ASGI app has no tunnel to open).
        """
        protocol = self.protocol
        config = protocol.config
        if self.request.method == b"CONNECT" and 200 <= self.status < 300:
            raise RuntimeError("an ASGI application cannot answer CONNECT with 2xx: "
                               "ASGI has no tunnel (RFC 9110 §9.3.6)")
        headers, conninfo = protocol.state.head_cache.split(
            message.get("headers", ()), config.server_header, config.date_header
        )
        # (wants_close, inlined: this runs for every response)
        limit = config.max_requests_per_connection
        close = protocol.state.shutting_down or (
            limit is not None and protocol.requests >= limit
        )
        mode = config.keep_alive_header
        if close or mode == "never" or (
            mode == "http10" and self.request.http_version != b"1.0"
        ):
            if not close and conninfo is NO_CONNECTION_INFO:
                return Response(self.status, headers)
            ka = None
        else:
            ka = protocol.keep_alive_info()
        if conninfo is NO_CONNECTION_INFO:
            # Nothing hop-by-hop from the app: shared, known-valid connection parts
            # (the core serializes each once).
            return Response(self.status, headers, connection=_CLOSE_CONNINFO if ka is None else ka)
        options = set(conninfo.options)
        options.discard(b"keep-alive")
        if close:
            options.add(b"close")
        conn_fields = [
            (f[1], f[2]) for f in conninfo.fields.fields if f[0] not in _DROP_FROM_APP
        ]
        if ka is not None:
            conn_fields += ka.fields.raw()
        return Response(
            self.status, headers, connection=ConnectionInfo(options=options, fields=conn_fields)
        )

def _flush_heads(pending: list[RequestCycle]) -> None:
    """Write every response head still waiting for its body (see ``send``)."""
    cycles = pending[:]
    pending.clear()
    for cycle in cycles:
        if cycle.head:
            cycle._flush_head()


async def _service_unavailable(scope: Any, receive: Any, send: Any) -> None:
    body = b"Service Unavailable\n"
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body)),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _connect_not_implemented(scope: Any, receive: Any, send: Any) -> None:
    """CONNECT asks for a tunnel (RFC 9110 §9.3.6), which an origin server does not open:
    501 (RFC 9110 §15.6.2, "does not support the functionality required"), and the
    connection closes, since what follows the request is not meant as HTTP."""
    body = b"Not Implemented: CONNECT is not served here\n"
    await send({"type": "http.response.start", "status": 501, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body)),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _addr(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


def _apply_proxy_headers(scope: dict[str, Any], trusted: list[str]) -> None:
    """Take client address and scheme from X-Forwarded-* when the peer is trusted."""
    client = scope["client"]
    if "*" not in trusted and (client is None or client[0] not in trusted):
        return
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            proto = value.decode("latin-1").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
        elif name == b"x-forwarded-for":
            host = value.decode("latin-1").split(",")[-1].strip()
            if host:
                scope["client"] = (host, 0)
