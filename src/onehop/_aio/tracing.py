"""The endpoint ``--log-level trace`` uses: connection lines at uvicorn's TRACE level.

A subclass of the serving endpoint rather than a check inside it, so the plain endpoint
pays nothing for tracing; compiled with the endpoint (an interpreted class may not
subclass a compiled one).
"""

from __future__ import annotations

from typing import Any

from onehop._aio.endpoint import ServerEndpoint
from onehop._aio.logs import TRACE, error_log


def endpoint_class() -> type[ServerEndpoint]:
    """The endpoint a listener should create: :class:`TracingEndpoint` when TRACE is on
    for ``onehop.error`` (the plain one otherwise costs nothing for tracing)."""
    return TracingEndpoint if error_log.isEnabledFor(TRACE) else ServerEndpoint


class TracingEndpoint(ServerEndpoint):
    """A :class:`ServerEndpoint` that logs, at TRACE, each connection opened and closed
    with the count of open connections of its listener (``--log-level trace``)."""

    __slots__ = ()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        error_log.log(TRACE, "%s: connection made%s (%d open)", _peer(self.client_addr),
                      " (TLS)" if self.scheme == "https" else "", len(self.state.connections))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        error_log.log(TRACE, "%s: connection lost after %d request(s)%s (%d open)",
                      _peer(self.client_addr), self.requests,
                      f": {exc}" if exc is not None else "", len(self.state.connections))


def _peer(addr: tuple[str, int] | None) -> str:
    return f"{addr[0]}:{addr[1]}" if addr else "-"
