"""The ASGI ``websocket`` scope on the serving endpoint (RFC 6455, RFC 9110 §7.8).

A request offering ``Upgrade: websocket`` (listed in ``Connection``, any case, any
position, e.g. ``keep-alive, Upgrade``) gets a :class:`WebSocketCycle`. The
handshake is checked strictly first (:func:`check_handshake`): GET over HTTP/1.1,
``Upgrade: websocket``, version 13 (else 426 with ``Sec-WebSocket-Version: 13``,
RFC 6455 §4.4), a key of 16 base64 bytes (else 400). The app then gets
``websocket.connect``; its ``websocket.accept`` makes the core write the ``101``
and the endpoint switch to tunnel mode with this cycle as the receiver, so frames
go to the :mod:`~onehop.server.wsengine` engine from then on. A close before
accepting answers 403, and ``websocket.http.response.*`` answers whatever the app
chose (the denial-response extension).

After the switch: messages are queued for ``receive`` (reading pauses past a high
water mark: backpressure to the client), ``send`` waits while the client does not
read, a ping goes out every ``ws_ping_interval`` seconds and a missing pong within
``ws_ping_timeout`` closes with 1011, a message over ``ws_max_size`` closes with
1009, and graceful shutdown closes with 1012 (service restart).

Over HTTP/2 (RFC 8441) the same cycle serves a stream: the extended CONNECT
arrives as the GET it replaces, the handshake differs only in
:func:`check_handshake` (no key) and :func:`accept_head` (a ``200`` on the stream
for the ``101``), and the frames flow in the stream's DATA, with the same engine,
limits, pings, close codes and backpressure (the stream's flow-control window).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import unquote

from onehop._aio.handlers import CLOSE
from onehop._aio.timer import LazyTimer
from onehop.core import ConnectionInfo, Data, EndOfMessage, Headers, InformationalResponse, Request
from onehop.core import Response as CoreResponse
from onehop.core.wskey import accept_key, is_valid_key
from onehop.errors import ClientDisconnected
from onehop.server import proxyheaders, wsengine
from onehop.server.wsengine import Closed, Engine, Message

if TYPE_CHECKING:
    from onehop._aio.handlers import Endpoint
    from onehop.server.config import ASGIApp, Config
    from onehop.server.config import Message as AsgiMessage


class Service(Protocol):
    """What a WebSocket cycle uses of the ASGI service that made it."""

    app: ASGIApp
    config: Config
    tasks: set[asyncio.Task[None]]
    lifespan_state: dict[str, Any]
    log_access: bool
    trusted: proxyheaders.TrustedHosts | None

logger: Final = logging.getLogger("onehop.error")
access_logger: Final = logging.getLogger("onehop.access")

#: Messages queued for the app before the client is no longer read (backpressure).
QUEUE_HIGH_WATER: Final = 16
#: Seconds to wait for the client's close frame after ours, before cutting the connection.
CLOSE_TIMEOUT: Final = 10.0
_END: Final = EndOfMessage()


class HandshakeError(Exception):
    """The request cannot become a WebSocket: answer ``status`` with ``headers``."""

    def __init__(self, status: int, text: str, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers


def offers_websocket(request: Request) -> bool:
    """Whether *request* carries ``Upgrade: websocket`` at all (listed in Connection or
    not: a WebSocket handshake that forgot ``Connection: upgrade`` is refused, not
    served as plain HTTP)."""
    conn = request.connection
    if not conn.fields:
        return False
    return any(p.strip().lower() == b"websocket"
               for p in conn.fields.get_list(b"upgrade"))


def check_handshake(request: Request) -> bytes:
    """Check a WebSocket opening handshake (RFC 6455 §4.2.1); return its key (``b""``
    over HTTP/2).

    Over HTTP/2 the request was an extended CONNECT (RFC 8441 §5), which
    :func:`~onehop._aio.h2fields.request_from_fields` hands on as this GET with
    ``Upgrade: websocket`` and version ``b"2"``: method, version and Connection are
    the stream's, and there is no key ("Implementations using this extended CONNECT
    ... do not do the processing of the Sec-WebSocket-Key and Sec-WebSocket-Accept
    header fields"); ``Sec-WebSocket-Version`` is checked alike.

    Raises:
        HandshakeError: 400 (not GET, not HTTP/1.1, no ``upgrade`` in Connection, a
            bad key), 426 (a version other than 13, with ``Sec-WebSocket-Version: 13``).
    """
    over_http2 = request.http_version == b"2"
    if not over_http2:
        if request.method != b"GET":
            raise HandshakeError(400, "WebSocket handshake needs GET (RFC 6455 §4.1)", [])
        if request.http_version != b"1.1":
            raise HandshakeError(400, "WebSocket handshake needs HTTP/1.1 (RFC 6455 §4.1)",
                                 [])
        if b"upgrade" not in request.connection.options:
            raise HandshakeError(400, "WebSocket handshake needs 'upgrade' in Connection "
                                      "(RFC 6455 §4.2.1, RFC 9110 §7.8)", [])
    versions = request.headers.get_list(b"sec-websocket-version")
    if versions != [b"13"]:
        raise HandshakeError(426, "Upgrade Required: WebSocket version 13 only "
                                  "(RFC 6455 §4.4, RFC 8441 §5)",
                             [(b"Sec-WebSocket-Version", b"13")])
    if over_http2:
        return b""
    keys = request.headers.get_all(b"sec-websocket-key")
    if len(keys) != 1 or not is_valid_key(keys[0]):
        raise HandshakeError(400, "Bad Request: Sec-WebSocket-Key must be 16 bytes, "
                                  "base64-encoded (RFC 6455 §4.1)", [])
    return keys[0]


def accept_head(request: Request, key: bytes,
                fields: list[tuple[bytes, bytes]]) -> InformationalResponse | CoreResponse:
    """The head that accepts a WebSocket, with the agreed *fields*: over HTTP/1.1 the
    ``101`` with ``Upgrade: websocket`` and ``Sec-WebSocket-Accept`` for *key* (RFC 6455
    §4.2.2); over HTTP/2 a ``200`` on the stream, nothing more (RFC 8441 §5: "it MUST
    respond with a 200 (OK) status code"; HTTP/2 has no 101, RFC 9113 §8.6)."""
    if request.http_version == b"2":
        return CoreResponse(200, fields)
    return InformationalResponse(101, [(b"Sec-WebSocket-Accept", accept_key(key)), *fields],
                                 b"Switching Protocols",
                                 ConnectionInfo(["upgrade"], [(b"Upgrade", b"websocket")]))


class WebSocketCycle:
    """One WebSocket: the ASGI ``receive``/``send`` pair, the handshake, and (after the
    switch) the endpoint's receiver for raw bytes.

    Owns the engine (``engine``, from the accept on), the queue of app events
    (``_events``, woken by ``_wake``) and the ping timer. Runs on the event loop.
    """

    def __init__(self, service: Service, endpoint: Endpoint, request: Request,
                 engine: str, key: bytes) -> None:
        self.service = service
        self.endpoint = endpoint
        self.request = request
        self.engine_name = engine
        self.key = key
        self.engine: Engine | None = None
        self.connected = False  #: ``websocket.connect`` was received by the app
        self.accepted = False
        self.closed = False  #: the app learnt of the end, or ended it
        self.gone = False  #: the connection ended (EOF or loss)
        self.refused = False  #: the app answered with HTTP instead
        self._events: deque[AsgiMessage] = deque()
        self._wake: asyncio.Event | None = None
        self._paused = False
        #: Loop time of the last ping sent, and by when its pong is due (0: none due).
        self._last_ping = 0.0
        self._pong_due = 0.0
        self._status = 0
        self._deny_head = b""
        #: One timer: the next ping, a pong's deadline, or the close handshake's.
        self._timer = LazyTimer(endpoint.loop, self._timer_fired)
        self.scope = self._scope()
        self.task = endpoint.loop.create_task(self.run())
        service.tasks.add(self.task)

    def _scope(self) -> dict[str, Any]:
        request = self.request
        endpoint = self.endpoint
        service = self.service
        root_path = service.config.root_path
        target = request.target
        raw_path, _, query = target.partition(b"?")
        path = raw_path.decode("ascii", "replace")
        if "%" in path:
            path = unquote(path)
        headers = request.headers.lower_items()
        if request.http_version == b"2":
            # (Upgrade is our picture of the extended CONNECT, not a field the client
            # sent: HTTP/2 forbids it, RFC 9113 §8.2.2.)
            headers += [f for f in request.connection.fields.lower_items()
                        if f[0] != b"upgrade"]
        else:
            headers += request.connection.fields.lower_items()
        protocols = [p.strip().decode("latin-1") for p in
                     request.headers.get_list(b"sec-websocket-protocol") if p.strip()]
        scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "2" if request.http_version == b"2" else "1.1",
            "scheme": "wss" if endpoint.scheme == "https" else "ws",
            "server": endpoint.server_addr,
            "client": endpoint.client_addr,
            "root_path": root_path,
            "path": root_path + path if root_path else path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
            "subprotocols": protocols,
            "state": service.lifespan_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        if service.trusted is not None:
            proxyheaders.apply(scope, service.trusted)
        return scope

    # --- the endpoint's callbacks: the handshake request -----------------------------------------

    def on_body(self, data: bytes) -> None:
        pass  # (a GET handshake has no content; the core framed whatever came)

    def on_end(self, trailers: Headers) -> None:
        pass

    def on_writable(self) -> None:
        pass  # ``send`` awaits the endpoint's FlowControl

    def on_eof(self) -> None:
        self._gone(wsengine.ABNORMAL)

    def on_lost(self) -> None:
        self._gone(wsengine.ABNORMAL)

    # --- the endpoint's callbacks after the switch (a TunnelReceiver) ----------------------------

    def data_received(self, data: bytes) -> None:
        engine = self.engine
        assert engine is not None
        events, out = engine.receive(data)
        if out:
            self.endpoint.write(out)
        for event in events:
            if type(event) is Message:
                data_or_text = event.data
                if isinstance(data_or_text, str):
                    self._push({"type": "websocket.receive", "text": data_or_text})
                else:
                    self._push({"type": "websocket.receive", "bytes": data_or_text})
            elif type(event) is Closed:
                self._push({"type": "websocket.disconnect", "code": event.code,
                            "reason": event.reason})
            else:  # a pong: keep-alive answered; the next ping after the interval
                if self._pong_due:
                    self._pong_due = 0.0
                    self._timer.arm(max(0.0, self._last_ping + (
                        self.service.config.ws_ping_interval or 0.0)
                        - self.endpoint.loop.time()))
        if engine.done:
            self._end()
        elif len(self._events) > QUEUE_HIGH_WATER and not self._paused:
            self._paused = True
            self.endpoint.pause_reading()  # the app is slow: stop reading the client

    def eof_received(self) -> bool | None:
        self._gone(wsengine.ABNORMAL)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone(wsengine.ABNORMAL)

    def pause_writing(self) -> None:
        pass  # (the endpoint's FlowControl is paused too; ``send`` waits on it)

    def resume_writing(self) -> None:
        pass

    def shutdown(self) -> None:
        """Graceful shutdown: close with 1012 (service restart), as uvicorn does."""
        if self.engine is not None and not self.engine.closing:
            self._closing(self.engine.close(wsengine.SERVICE_RESTART, "server restart"))

    # --- the app's side ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.service.app(self.scope, self.receive, self.send)
        except Exception as exc:
            if not self.closed:
                logger.error("Exception in ASGI application (websocket)", exc_info=exc)
            if not self.accepted and not self.refused:
                self._refuse(500, "Internal Server Error")
            elif self.engine is not None and not self.engine.closing:
                self._closing(self.engine.close(wsengine.INTERNAL_ERROR, "server error"))
        else:
            if not self.accepted and not self.refused:
                self._refuse(403, "Forbidden: the application refused the WebSocket")
            elif self.engine is not None and not self.engine.closing:
                self._closing(self.engine.close(wsengine.NORMAL))
        finally:
            self.service.tasks.discard(self.task)

    def _push(self, message: AsgiMessage) -> None:
        self._events.append(message)
        if self._wake is not None:
            self._wake.set()

    def _gone(self, code: int) -> None:
        """The connection ended without a close frame (or after ours)."""
        self.gone = True
        if not self.closed and not any(
                m["type"] == "websocket.disconnect" for m in self._events):
            self._push({"type": "websocket.disconnect", "code": code, "reason": ""})
        self._timer.cancel()
        if self._wake is not None:
            self._wake.set()

    def _end(self) -> None:
        """The closing handshake is over: the server closes TCP (RFC 6455 §7.1.1)."""
        self._timer.cancel()
        self.endpoint.close()

    def _closing(self, data: bytes) -> None:
        """Write our close frame; the client has ``CLOSE_TIMEOUT`` seconds to answer."""
        self.endpoint.write(data)
        self._timer.arm(CLOSE_TIMEOUT)

    async def receive(self) -> AsgiMessage:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        while True:
            if self._events:
                message = self._events.popleft()
                if self._paused and len(self._events) <= QUEUE_HIGH_WATER // 2:
                    self._paused = False
                    self.endpoint.resume_reading()
                if message["type"] == "websocket.disconnect":
                    self.closed = True
                return message
            if self.closed:
                return {"type": "websocket.disconnect", "code": wsengine.ABNORMAL, "reason": ""}
            if self._wake is None:
                self._wake = asyncio.Event()
            self._wake.clear()
            await self._wake.wait()

    async def send(self, message: AsgiMessage) -> None:
        kind = message["type"]
        if not self.accepted:
            if kind == "websocket.accept":
                self._accept(message)
                return
            if kind == "websocket.close":
                self.closed = True
                self._refuse(403, "Forbidden: the application closed the WebSocket")
                return
            if kind == "websocket.http.response.start":
                self._deny(message)
                return
            if kind == "websocket.http.response.body":
                self._deny_body(message)
                return
            raise RuntimeError(f"expected 'websocket.accept' or 'websocket.close', got {kind!r}")
        endpoint = self.endpoint
        engine = self.engine
        assert engine is not None
        if endpoint.flow.write_paused:
            await endpoint.flow.drain()  # the client is slow: so is the app
        if engine.closing or self.closed or self.gone:
            raise ClientDisconnected("the WebSocket is closed")
        if kind == "websocket.send":
            text = message.get("text")
            endpoint.write(engine.send(text if text is not None else message.get("bytes", b"")))
        elif kind == "websocket.close":
            self.closed = True
            self._closing(engine.close(message.get("code", wsengine.NORMAL),
                                       message.get("reason") or ""))
        else:
            raise RuntimeError(f"unexpected {kind!r} on an open WebSocket")

    def _accept(self, message: AsgiMessage) -> None:
        """The app accepted: write the 101 (HTTP/2: the 200) and switch the connection
        (the stream) to frames."""
        config = self.service.config
        offers = [o.decode("latin-1") for o in
                  self.request.headers.get_list(b"sec-websocket-extensions")]
        engine, extensions = wsengine.make_engine(
            self.engine_name, offers, max_size=config.ws_max_size,
            deflate=config.ws_per_message_deflate)
        fields: list[tuple[bytes, bytes]] = []
        if extensions:
            fields.append((b"Sec-WebSocket-Extensions", extensions.encode("ascii")))
        subprotocol = message.get("subprotocol")
        if subprotocol:
            fields.append((b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1")))
        fields.extend(message.get("headers") or ())
        endpoint = self.endpoint
        head = accept_head(self.request, self.key, fields)
        endpoint.write(endpoint.core.send(head))
        self.accepted = True
        self.engine = engine
        self._log(head.status_code)
        endpoint.switch(self)
        if config.ws_ping_interval:
            self._last_ping = endpoint.loop.time()
            self._timer.arm(config.ws_ping_interval)

    def _refuse(self, status: int, text: str) -> None:
        self.refused = True
        self._log(status)
        self.endpoint.send_error(status, text)

    def _deny(self, message: AsgiMessage) -> None:
        """``websocket.http.response.start``: an HTTP answer instead of the socket."""
        self.refused = True
        self._status = message["status"]
        # (The connection ends after it, as uvicorn's does: a client that tried to
        # switch protocols is not expected to send another request.)
        self._deny_head = self.endpoint.core.send(CoreResponse(
            message["status"], list(message.get("headers") or ()),
            connection=self.endpoint.response_connection(CLOSE)))

    def _deny_body(self, message: AsgiMessage) -> None:
        core = self.endpoint.core
        out = self._deny_head + (core.send(Data(message.get("body", b"")))
                                 if message.get("body") else b"")
        self._deny_head = b""
        if message.get("more_body"):
            self.endpoint.write(out)
            return
        self._log(self._status)
        self.endpoint.finish(out + core.send(_END))

    def _timer_fired(self) -> None:
        """Keep-alive and the close handshake's limit: a ping every ``ws_ping_interval``
        seconds; no pong within ``ws_ping_timeout``: close with 1011 and cut; our close
        frame unanswered for ``CLOSE_TIMEOUT``: cut."""
        engine = self.engine
        if engine is None or engine.done:
            return
        endpoint = self.endpoint
        if engine.closing:
            endpoint.abort()
            return
        config = self.service.config
        interval = config.ws_ping_interval or 0.0
        now = endpoint.loop.time()
        if self._pong_due:
            if now >= self._pong_due:
                self._closing(engine.close(wsengine.INTERNAL_ERROR, "keepalive ping timeout"))
                self._push({"type": "websocket.disconnect", "code": wsengine.INTERNAL_ERROR,
                            "reason": "keepalive ping timeout"})
                endpoint.abort()
                return
            self._timer.arm(self._pong_due - now)
            return
        due = self._last_ping + interval
        if now < due:
            self._timer.arm(due - now)
            return
        endpoint.write(engine.ping(os.urandom(4)))
        self._last_ping = now
        timeout = config.ws_ping_timeout
        if timeout:
            self._pong_due = now + timeout
            self._timer.arm(min(timeout, interval))
        else:
            self._timer.arm(interval)

    def _log(self, status: int) -> None:
        if not self.service.log_access or not access_logger.isEnabledFor(logging.INFO):
            return
        addr = self.endpoint.client_addr
        access_logger.info('%s - "WebSocket %s" %d', f"{addr[0]}:{addr[1]}" if addr else "-",
                           self.request.target.decode("latin-1"), status)
