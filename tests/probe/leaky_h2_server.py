"""A deliberately careless HTTP/2 server: the negative control of the probe's HTTP/2 checks.

Every answer carries ``Connection: keep-alive``, ``Keep-Alive``, ``Transfer-Encoding:
chunked`` and ``Upgrade`` (what an HTTP/1.1 habit or a naive HTTP/1-to-2 gateway
sends), and every request is served, malformed or not (the ``h2`` library's header
validation and normalisation are off both ways). Run as ``python leaky_h2_server.py
PORT``; cleartext, prior knowledge.
"""

from __future__ import annotations

import asyncio
import sys

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, RequestReceived
from h2.exceptions import ProtocolError

LEAKS = [(b"connection", b"keep-alive"), (b"keep-alive", b"timeout=5"),
         (b"transfer-encoding", b"chunked"), (b"upgrade", b"h2c")]


class Leaky(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.conn = H2Connection(H2Configuration(
            client_side=False, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False,
            normalize_inbound_headers=False))
        self.conn.initiate_connection()
        self.transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.transport.write(self.conn.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                body = b"leaky\n"
                self.conn.send_headers(event.stream_id, [
                    (b":status", b"200"), (b"content-type", b"text/plain"), *LEAKS])
                self.conn.send_data(event.stream_id, body, end_stream=True)
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.conn.data_to_send())


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Leaky, "127.0.0.1", port)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
