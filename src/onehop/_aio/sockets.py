"""Binding the listening socket: TCP (IPv4 or IPv6), a Unix socket, or an inherited fd.

One function for the server, its workers and the proxy, so ``--uds`` and
``--fd`` mean the same everywhere.
"""

from __future__ import annotations

import os
import socket


def bind_socket(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    uds: str | None = None,
    fd: int | None = None,
    backlog: int = 2048,
    inheritable: bool = False,
) -> socket.socket:
    """A listening socket: a duplicate of the inherited *fd* if given, else the Unix
    socket *uds* (an old file there is removed), else TCP on *host*:*port*
    (``SO_REUSEADDR``).

    Raises:
        OSError: the address is in use, not allowed, or the fd is no socket.
    """
    if fd is not None:
        sock = socket.socket(fileno=os.dup(fd))  # (a dup: the fd stays its owner's)
    elif uds is not None:
        if os.path.exists(uds):
            os.unlink(uds)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(uds)
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError:
            sock.close()
            raise
    sock.listen(backlog)
    sock.setblocking(False)
    if inheritable:
        sock.set_inheritable(True)
    return sock


def describe(sock: socket.socket, scheme: str = "http") -> str:
    """``http://host:port`` (or ``unix:/path``) for a log line."""
    name = sock.getsockname()
    if isinstance(name, str | bytes):
        return f"unix:{name.decode() if isinstance(name, bytes) else name}"
    host = f"[{name[0]}]" if ":" in str(name[0]) else name[0]
    return f"{scheme}://{host}:{name[1]}"
