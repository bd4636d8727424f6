"""A built-in echo origin for ``onehop demo``: answers with the request head it received, as JSON.

It runs on the core directly (not ASGI) so it can show every field line as it
arrived, hop-by-hop ones included, plus which upstream connection carried the
request and how many requests that connection has carried: what a newcomer
needs to see stripping and reuse. A path ``/chunked`` answers chunked, so an
HTTP/1.0 client can see the proxy de-chunk it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from onehop.core import (
    NEED_DATA,
    Connection,
    Data,
    EndOfMessage,
    Request,
    Response,
    Role,
)
from onehop.errors import ProtocolError

_ids = itertools.count(1)


class EchoOrigin(asyncio.Protocol):
    """One connection of the echo origin."""

    def __init__(self) -> None:
        self.core = Connection(Role.SERVER)
        self.id = next(_ids)
        self.count = 0
        self.transport: asyncio.Transport | None = None
        self.request: Request | None = None
        self.body = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.core.receive_data(data)
        self._pump()

    def eof_received(self) -> bool:
        self.core.receive_data(b"")
        self._pump()
        return False

    def _pump(self) -> None:
        core, t = self.core, self.transport
        assert t is not None
        try:
            while True:
                event = core.next_event()
                if event is NEED_DATA or not isinstance(event, Request | Data | EndOfMessage):
                    break
                if type(event) is Request:
                    self.request, self.body = event, 0
                elif type(event) is Data:
                    self.body += len(event.data)
                elif type(event) is EndOfMessage and self.request is not None:
                    t.write(self._answer(self.request))
                    self.request = None
        except ProtocolError:
            t.close()
            return
        if core.must_close:
            t.close()

    def _answer(self, req: Request) -> bytes:
        self.count += 1
        head: dict[str, Any] = {
            "request_line": f"{req.method.decode()} {req.target.decode('latin-1')} "
                            f"HTTP/{req.http_version.decode()}",
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in req.headers],
            "hop_by_hop_received": [
                [n.decode("latin-1"), v.decode("latin-1")] for n, v in req.connection.fields
            ],
            "body_bytes": self.body,
            "origin_connection": self.id,
            "requests_on_this_connection": self.count,
        }
        body = (json.dumps(head, indent=2) + "\n").encode()
        core = self.core
        if req.target.startswith(b"/chunked"):
            # no Content-Length: the core frames it chunked for an HTTP/1.1 peer
            resp = Response(200, [(b"Content-Type", b"application/json")])
        else:
            resp = Response(200, [(b"Content-Type", b"application/json"),
                                  (b"Content-Length", str(len(body)).encode())])
        return core.send(resp) + core.send(Data(body)) + core.send(EndOfMessage())


async def start_echo_origin(host: str = "127.0.0.1", port: int = 0) -> asyncio.AbstractServer:
    """Start the echo origin; read the port from ``server.sockets[0]``."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(EchoOrigin, host, port)
