"""A deliberately naive reverse proxy: one upstream connection per client connection,
bytes relayed verbatim both ways, so every hop-by-hop field goes straight through.

It exists to prove the probe's stripping checks can fail. Run as
``python naive_proxy.py LISTEN_PORT UPSTREAM_PORT``; it prints ``ready`` once listening.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _handle(client: socket.socket, upstream_port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", upstream_port), timeout=10)
    except OSError:
        client.close()
        return
    up = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
    up.start()
    _pump(upstream, client)
    up.join(10)
    client.close()
    upstream.close()


def main() -> None:
    port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    print("ready", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_handle, args=(client, upstream_port), daemon=True).start()


if __name__ == "__main__":
    main()
