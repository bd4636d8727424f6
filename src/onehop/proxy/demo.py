"""A built-in echo origin for ``onehop demo``: answers with the request head it received, as JSON.

It is a handler on the serving endpoint (not ASGI) so it can show every field
line as it arrived, hop-by-hop ones included, plus which upstream connection carried the
request and how many requests that connection has carried: what a newcomer
needs to see stripping and reuse. A path ``/chunked`` answers chunked, so an
HTTP/1.0 client can see the proxy de-chunk it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from onehop._aio.endpoint import ServerEndpoint
from onehop._aio.handlers import Endpoint
from onehop._aio.serving import ServingConfig, ServingState
from onehop.core import Data, EndOfMessage, Headers, Request, Response

_ids = itertools.count(1)
_END = EndOfMessage()


class EchoConnection:
    """One connection of the echo origin: counts its requests (a handler on the endpoint)."""

    def __init__(self) -> None:
        self.id = next(_ids)
        self.count = 0

    def on_request(self, endpoint: Endpoint, request: Request) -> EchoRequest:
        return EchoRequest(self, endpoint, request)

    def on_closed(self) -> None:
        pass


class EchoRequest:
    """Counts the request body, then answers with the head as received."""

    __slots__ = ("body", "conn", "endpoint", "request")

    def __init__(self, conn: EchoConnection, endpoint: Endpoint, request: Request) -> None:
        self.conn = conn
        self.endpoint = endpoint
        self.request = request
        self.body = 0

    def on_body(self, data: bytes) -> None:
        self.body += len(data)

    def on_end(self, trailers: Headers) -> None:
        self.endpoint.finish(self._answer())

    def on_writable(self) -> None:
        pass

    def on_eof(self) -> None:
        pass  # (a half-close: the endpoint's ``half_close_abandons`` rule applies)

    def on_lost(self) -> None:
        pass

    def _answer(self) -> bytes:
        conn, req = self.conn, self.request
        conn.count += 1
        head: dict[str, Any] = {
            "request_line": f"{req.method.decode()} {req.target.decode('latin-1')} "
                            f"HTTP/{req.http_version.decode()}",
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in req.headers],
            "hop_by_hop_received": [
                [n.decode("latin-1"), v.decode("latin-1")] for n, v in req.connection.fields
            ],
            "body_bytes": self.body,
            "origin_connection": conn.id,
            "requests_on_this_connection": conn.count,
        }
        body = (json.dumps(head, indent=2) + "\n").encode()
        fields = [(b"Content-Type", b"application/json")]
        if not req.target.startswith(b"/chunked"):
            # (no Content-Length on /chunked: the core frames it chunked for HTTP/1.1)
            fields.append((b"Content-Length", str(len(body)).encode()))
        endpoint = self.endpoint
        core = endpoint.core
        resp = Response(200, fields, connection=endpoint.response_connection())
        return core.send(resp) + core.send(Data(body)) + core.send(_END)


async def start_echo_origin(host: str = "127.0.0.1", port: int = 0) -> asyncio.AbstractServer:
    """Start the echo origin; read the port from ``server.sockets[0]``."""
    loop = asyncio.get_running_loop()
    state = ServingState(ServingConfig(keep_alive_header="never", idle_timeout=60.0))
    return await loop.create_server(
        lambda: ServerEndpoint(state, lambda endpoint: EchoConnection()), host, port)
