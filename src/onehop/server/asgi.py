"""The ASGI application as a handler on the serving endpoint: scope, receive, send.

:class:`AsgiService` is the server's :class:`~onehop._aio.endpoint.ConnectionHandler`
(one for all connections: it keeps nothing per connection); it makes a
:class:`RequestCycle` per request, which runs the app in a task and turns its
``receive``/``send`` calls into endpoint calls. Persistence is decided by the
core and the endpoint; this layer never writes ``Connection`` itself: the app's
hop-by-hop fields go to the response's connection part, and the endpoint adds
``close`` or the ``Keep-Alive`` hint.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from onehop._aio.handlers import ANSWERED, Answered, Endpoint
from onehop.core import Data, EndOfMessage, Headers, InformationalResponse, Request, Response
from onehop.core.target import parse_absolute_form
from onehop.errors import ClientDisconnected, InvalidRequestTarget
from onehop.server import proxyheaders, wsengine
from onehop.server.heads import HeadCache
from onehop.server.websocket import (
    HandshakeError,
    WebSocketCycle,
    check_handshake,
    offers_websocket,
)

if TYPE_CHECKING:
    from onehop.server.config import ASGIApp, Config, Message

__all__ = ["AsgiService", "ClientDisconnected", "RequestCycle"]

logger: Final = logging.getLogger("onehop.error")

access_logger: Final = logging.getLogger("onehop.access")

#: Request body bytes buffered for the app before reading pauses (as uvicorn).
BODY_HIGH_WATER: Final = 64 * 1024
_ASGI: Final = {"version": "3.0", "spec_version": "2.4"}
#: The response's end (no trailers); events are never mutated, so one instance serves all.
_END: Final = EndOfMessage()
#: Empty ``onehop.connection`` extension values, shared when a request has no options.
_NO_OPTIONS: Final[list[bytes]] = []
_NO_FIELDS: Final[list[tuple[bytes, bytes]]] = []
#: Method names already decoded (the ASGI ``method`` is a str).
#: The ASGI ``http_version`` of each request version (b"2": an HTTP/2 stream).
_VERSIONS: Final = {b"1.1": "1.1", b"1.0": "1.0", b"2": "2"}
_METHODS: Final = {
    m: m.decode("ascii")
    for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT")
}


class AsgiService:
    """Runs one ASGI app for every connection of a server.

    Owns the app tasks (``tasks``, for graceful shutdown), the head cache and the
    response heads waiting to be coalesced with their body (``pending_heads``).
    Touched only from the server's loop.
    """

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app = app
        self.config = config
        self.tasks: set[asyncio.Task[None]] = set()
        self.lifespan_state: dict[str, Any] = {}
        self.head_cache = HeadCache()
        #: Cycles whose response head waits to be coalesced with their body (``send``).
        self.pending_heads: list[RequestCycle] = []
        self.log_access = config.access_log
        #: The peers believed for ``X-Forwarded-*`` (None: ``--no-proxy-headers``).
        self.trusted = (proxyheaders.TrustedHosts(config.forwarded_allow_ips)
                        if config.proxy_headers else None)
        #: The WebSocket engine ``--ws`` picked (None: Upgrade requests are plain HTTP).
        self.ws_engine = wsengine.available(config.ws)

    def on_request(self, endpoint: Endpoint,
                   request: Request) -> RequestCycle | WebSocketCycle | Answered:
        """The handler for *request*: a cycle running the app, or a refusal the server
        answers itself (CONNECT; an absolute-form target no origin can serve)."""
        if self.ws_engine is not None and offers_websocket(request):
            try:
                key = check_handshake(request)
            except HandshakeError as exc:
                return refuse(endpoint, exc.status, exc.text, exc.headers)
            return WebSocketCycle(self, endpoint, request, self.ws_engine, key)
        if request.method == b"CONNECT" and not self.config.connect_to_app:
            # An origin opens no tunnels (RFC 9110 §9.3.6): 501, "does not support the
            # functionality required" (§15.6.2), and the connection closes.
            return refuse(endpoint, 501, "Not Implemented: CONNECT is not served here")
        try:
            cycle = RequestCycle(self, endpoint, request)
        except InvalidRequestTarget as exc:
            return refuse(endpoint, exc.status_hint, f"Bad Request: {exc}")
        # The cycle drops its task from ``tasks`` when run() ends (no done callback:
        # that would cost one more loop callback per request).
        task = cycle.task = endpoint.loop.create_task(cycle.run())
        self.tasks.add(task)
        return cycle

    def on_closed(self) -> None:
        pass  # (one service for every connection: nothing is kept per connection)

    def live_tasks(self) -> set[asyncio.Task[None]]:
        """``tasks`` without any that ended unseen (cancelled before their first step)."""
        done = [task for task in self.tasks if task.done()]
        self.tasks.difference_update(done)
        return self.tasks


def refuse(endpoint: Endpoint, status: int, text: str,
           headers: list[tuple[bytes, bytes]] | None = None) -> Answered:
    """Answer a request the server refuses itself with an error and ``close``."""
    logger.info("%s: %d %s", endpoint.client_addr or "-", status, text)
    endpoint.send_error(status, text, headers=headers)
    return ANSWERED


class RequestCycle:
    """One request and its response: the ASGI ``receive``/``send`` pair.

    Owns the request body queue (``body``) filled by the endpoint and drained by
    ``receive``; ``_event`` wakes a ``receive`` waiting for body or disconnect.
    """

    __slots__ = (
        "_event",
        "body",
        "body_complete",
        "body_delivered",
        "body_size",
        "client_eof",
        "disconnected",
        "endpoint",
        "head",
        "request",
        "response_complete",
        "response_started",
        "scope",
        "service",
        "status",
        "task",
        "wants_continue",
    )

    def __init__(self, service: AsgiService, endpoint: Endpoint, request: Request) -> None:
        self.service = service
        self.endpoint = endpoint
        self.request = request
        self.body: list[bytes] = []
        self.body_size = 0
        self.body_complete = False
        self.body_delivered = False
        self.disconnected = False
        self.client_eof = False
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
        endpoint = self.endpoint
        service = self.service
        config = service.config
        target = request.target
        headers = request.headers.lower_items()
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
            if request.http_version == b"2":
                # (The body's framing for handlers that forward it, not a field the HTTP/2
                # client sent: RFC 9113 §8.2.2 forbids it there.)
                conn_fields = [f for f in conn_fields if f[0] != b"transfer-encoding"]
            headers += conn_fields
            connection = {"options": sorted(conninfo.options), "fields": conn_fields}
        else:
            connection = {"options": _NO_OPTIONS, "fields": _NO_FIELDS}  # empties: apps read
        method = request.method
        root_path = config.root_path
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": _VERSIONS.get(request.http_version, "1.1"),
            "server": endpoint.server_addr,
            "client": endpoint.client_addr,
            "scheme": endpoint.scheme,
            "method": _METHODS.get(method) or method.decode("ascii"),
            "root_path": root_path,
            "path": root_path + path if root_path else path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
            "state": service.lifespan_state.copy(),
            "extensions": {"onehop.connection": connection},
        }
        trusted = service.trusted
        if trusted is not None:
            proxyheaders.apply(scope, trusted)
        return scope

    # --- the endpoint's callbacks --------------------------------------------------------------

    def on_body(self, data: bytes) -> None:
        self.body.append(data)
        self.body_size += len(data)
        if self._event is not None:
            self._event.set()
        if self.body_size > BODY_HIGH_WATER:
            self.endpoint.pause_reading()

    def on_end(self, trailers: Headers) -> None:
        self.body_complete = True
        if self._event is not None:
            self._event.set()

    def on_writable(self) -> None:
        pass  # ``send`` awaits the endpoint's FlowControl instead

    def on_eof(self) -> None:
        # The client shut its side: an app waiting for more of the request hears that it
        # left (as uvicorn tells it), but what it still sends goes out (a half-closed
        # client may be reading its answer).
        self.client_eof = True
        if self._event is not None:
            self._event.set()

    def on_lost(self) -> None:
        self.disconnected = True
        if self._event is not None:
            self._event.set()

    # --- ASGI ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the app for this request; answer 500 or cut the connection if it fails."""
        endpoint = self.endpoint
        try:
            try:
                await self.service.app(self.scope, self.receive, self.send)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    raise
                if not self.disconnected:
                    logger.error("Exception in ASGI application", exc_info=exc)
                if not self.response_started:
                    self._send_500()
                elif not self.response_complete:
                    endpoint.abort()  # the head is out: only cutting tells the client
            else:
                if self.disconnected:
                    return
                if not self.response_started:
                    logger.error("ASGI application returned without starting a response")
                    self._send_500()
                elif not self.response_complete:
                    logger.error("ASGI application returned without completing the response")
                    endpoint.abort()
        finally:
            task = self.task
            if task is not None:
                self.service.tasks.discard(task)

    def _send_500(self) -> None:
        if self.disconnected:
            return
        self.response_started = self.response_complete = True
        self.status = 500
        self._log()
        self.endpoint.send_error(500, "Internal Server Error")

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
                self.endpoint.informational(InformationalResponse(100))
        while True:
            if self.disconnected or self.response_complete or (
                    self.client_eof and self.body_delivered):
                return {"type": "http.disconnect"}
            if self.body or (self.body_complete and not self.body_delivered):
                body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
                self.body.clear()
                self.body_size = 0
                more = not self.body_complete
                if more:
                    self.endpoint.resume_reading()
                else:
                    self.body_delivered = True
                return {"type": "http.request", "body": body, "more_body": more}
            self.endpoint.resume_reading()
            if self._event is None:
                self._event = asyncio.Event()
            self._event.clear()
            await self._event.wait()

    async def send(self, message: Message) -> None:
        """The app's ``send`` (ASGI HTTP).

        Raises:
            ClientDisconnected: the client is gone (ASGI spec 2.4), before or while
                the app waited for it to take more output.
            RuntimeError: a message out of order, or a head the core refuses.
        """
        endpoint = self.endpoint
        if endpoint.flow.write_paused:
            await endpoint.flow.drain()
        if self.disconnected:
            raise ClientDisconnected("the client disconnected")
        kind = message["type"]
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            self.status = message["status"]
            # Started only once the core took the head: a head it refuses (say, a 204
            # with content) leaves nothing written, so the app's error can still be a 500.
            self.head = endpoint.core.send(self._response(message))
            self.response_started = True
            # Coalesce the head with the first body chunk when it comes in the same
            # loop iteration; flush it on its own otherwise (streaming apps). One
            # callback per loop iteration flushes the heads of every connection.
            pending = self.service.pending_heads
            if not pending:
                endpoint.loop.call_soon(_flush_heads, pending)
            pending.append(self)
            return
        if self.response_complete:
            raise RuntimeError(f"unexpected {kind!r}: the response is complete")
        if kind != "http.response.body":
            raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        core = endpoint.core
        out = core.send(Data(body)) if body else b""
        if not more:
            out += core.send(_END)
            self.response_complete = True
        if self.head:
            out = self.head + out
            self.head = b""
        if more:
            endpoint.write(out)
            return
        if self._event is not None:
            self._event.set()
        if self.service.log_access:
            self._log()
        endpoint.finish(out)

    def _log(self) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        addr = self.endpoint.client_addr
        req = self.request
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d', f"{addr[0]}:{addr[1]}" if addr else "-",
            req.method.decode("latin-1"), req.target.decode("latin-1"),
            req.http_version.decode("latin-1"), self.status,
        )

    def _flush_head(self) -> None:
        head, self.head = self.head, b""
        if head:
            self.endpoint.write(head)

    def _response(self, message: Message) -> Response:
        """The core's Response from the app's; hop-by-hop fields go to the connection part,
        to which the endpoint adds ``close`` or ``Keep-Alive``.

        Raises:
            RuntimeError: a 2xx answer to CONNECT (an ASGI app has no tunnel to open).
        """
        if self.request.method == b"CONNECT" and 200 <= self.status < 300:
            raise RuntimeError("an ASGI application cannot answer CONNECT with 2xx: "
                               "ASGI has no tunnel (RFC 9110 §9.3.6)")
        config = self.service.config
        headers, conninfo = self.service.head_cache.split(
            message.get("headers", ()), config.server_header, config.date_header
        )
        return Response(self.status, headers,
                        connection=self.endpoint.response_connection(conninfo))


def _flush_heads(pending: list[RequestCycle]) -> None:
    """Write every response head still waiting for its body (see ``send``)."""
    cycles = pending[:]
    pending.clear()
    for cycle in cycles:
        if cycle.head:
            cycle._flush_head()
