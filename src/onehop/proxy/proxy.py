"""The reverse (and forward) proxy: a handler on the serving endpoint, upstreams via the pool.

Each client connection is a :class:`~onehop._aio.endpoint.ServerEndpoint` (the
same driver as the origin server, so header and body timeouts, lingering close,
the 503 gate and graceful shutdown are the server's own) whose requests go to
an :class:`~onehop.proxy.inbound.Inbound` handler; each request is one
:class:`~onehop.proxy.exchange.Exchange`. Upstream connections come from
:class:`onehop.client.Pool`, which keeps each side's persistence separate: a
client's ``close`` ends only the client connection; an upstream ``close`` or
HTTP/1.0 response retires only that upstream connection.

The proxy never forwards bytes it did not frame itself: the core parses the
request (rejecting smuggling attempts with their ``status_hint`` before any
upstream is chosen), :mod:`onehop.proxy.hop` builds a fresh message from the
end-to-end fields, and the core's writers produce new framing on each side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from onehop._aio.endpoint import ServerEndpoint
from onehop._aio.serving import ServingState
from onehop._aio.sockets import bind_socket
from onehop._aio.tls import alpn_protocols
from onehop._aio.tracing import endpoint_class
from onehop.proxy.config import ConfigError, ProxyConfig, split_listen
from onehop.proxy.inbound import Inbound
from onehop.proxy.routing import RequestHook, ResponseHook, Router

log: Final = logging.getLogger("onehop.proxy")

class Proxy(Router):
    """A reverse proxy (and, with ``config.forward``, a forward proxy).

    Args:
        config: routes, timeouts, limits, header policy; or use *upstreams*.
        upstreams: shorthand for one ``default`` group of ``http://`` URLs.
        request_hook: ``hook(inbound, outbound) -> Request | None``, called with
            the received request and the one about to go upstream, after
            stripping and after ``Via``/forwarding fields were added; return a
            replacement or None. A replacement the core refuses (say, with a
            hop-by-hop field among its end-to-end headers) is answered 500 with
            a log line: a hook cannot reopen what stripping closed.
        response_hook: ``hook(upstream_response, outbound) -> Response | None``, likewise,
            for every response relayed (the answer to an Upgrade offer too).
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
        super().__init__(config, upstreams=upstreams, request_hook=request_hook,
                         response_hook=response_hook, access_log=access_log)
        #: The client connections and the shared connection rules (the server's own).
        self.state = ServingState(self.config.serving_config())
        self._servers: list[asyncio.AbstractServer] = []
        self._endpoint_class: type[ServerEndpoint] = ServerEndpoint

    # --- lifecycle ----------------------------------------------------------------------------

    def _endpoint(self) -> ServerEndpoint:
        return self._endpoint_class(self.state, lambda endpoint: Inbound(self, endpoint))

    @property
    def scheme(self) -> str:
        """``https`` when listening with TLS (``config.tls``), else ``http``."""
        return "http" if self.config.tls is None else "https"

    async def start(
        self, host: str | None = None, port: int | None = None, *,
        sock: socket.socket | None = None, reuse_port: bool = False,
    ) -> None:
        """Listen on *host*:*port* (default: ``config.listen``) or an open *sock*; with TLS
        when ``config.tls`` is set (the context is built here, in the serving process).

        Raises:
            OSError: the address cannot be bound.
            ConfigError: the TLS files cannot be loaded (naming ``tls``).
        """
        loop = asyncio.get_running_loop()
        # (TracingEndpoint only at --log-level trace: the plain one pays nothing for it.)
        self._endpoint_class = endpoint_class()
        ctx = None
        if self.config.tls is not None:
            try:
                # (ALPN offers what the client side speaks: h2 first with http = auto.)
                tls = replace(self.config.tls, alpn=alpn_protocols(self.config.http))
                ctx = tls.context()
            except ValueError as exc:
                raise ConfigError(f"tls: {exc}") from None
        # The handshake must finish within the client header timeout (the endpoint's
        # timers start only once it has).
        handshake = self.config.timeouts.client_header if ctx is not None else None
        if sock is None:
            if host is None or port is None:
                h, p = split_listen(self.config.listen, "listen")
                host = h if host is None else host
                port = p if port is None else port
            if reuse_port:
                self._servers.append(await loop.create_server(
                    self._endpoint, host, port, backlog=2048, reuse_port=True, ssl=ctx,
                    ssl_handshake_timeout=handshake))
                return
            sock = bind_socket(host, port)
        self._servers.append(await loop.create_server(self._endpoint, sock=sock, backlog=2048,
                                                      ssl=ctx, ssl_handshake_timeout=handshake))

    @property
    def port(self) -> int:
        """The port listened on (after :meth:`start`)."""
        return int(self._servers[0].sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def serve_forever(self) -> None:
        await self._servers[0].serve_forever()

    async def aclose(self, grace: float | None = None) -> None:
        """Graceful shutdown: stop listening, close idle client connections, let in-flight
        exchanges finish (their responses carry ``close``) for *grace* seconds (default
        ``timeouts.graceful_shutdown``), then cut the rest and close the upstream pool."""
        for srv in self._servers:
            srv.close()
        state = self.state
        state.begin_shutdown()
        await state.drain(self.config.timeouts.graceful_shutdown if grace is None else grace)
        await self.pool.aclose()
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 2)

    async def __aenter__(self) -> Proxy:
        if not self._servers:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
