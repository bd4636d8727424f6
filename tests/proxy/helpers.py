"""Shared test peers for the proxy: the proxy on its own event-loop thread, raw upstreams."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from onehop.probe.wire import Response, Wire, request
from onehop.proxy import Proxy, ProxyConfig
from tests.helpers import free_port  # noqa: F401  (re-exported)


class ProxyThread:
    """A :class:`Proxy` on a private event loop in a thread, listening on a free port.

    With ``warm`` (the ``pool_state`` fixture sets the default), the pool holds one idle
    connection to each upstream before the test's first request, opened without sending
    anything: the first request then goes on a reused connection, as on a busy proxy.
    """

    #: Default for ``warm``, set per test by the ``pool_state`` fixture (tests/proxy/conftest.py).
    warm = False

    def __init__(self, config: ProxyConfig | None = None, *, warm: bool | None = None,
                 **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxy = Proxy(config, access_log=False, **kwargs)
        if warm is not None:
            self.warm = warm
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start("127.0.0.1", 0), self.loop).result(5)
        self.port = self.proxy.port
        if self.warm:
            asyncio.run_coroutine_threadsafe(self._prime(), self.loop).result(10)
        return self

    async def _prime(self) -> None:
        """Open one idle connection per upstream (best effort: a refusing one stays cold)."""
        pool = self.proxy.pool
        for group in self.proxy.groups.values():
            for upstream in group.members:
                with contextlib.suppress(Exception):
                    conn, _ = await pool.acquire(upstream.origin, connect_timeout=2)
                    pool.give_back(conn)

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.proxy.aclose(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def wire(self, timeout: float = 5.0) -> Wire:
        return Wire("127.0.0.1", self.port, timeout)

    def get(self, target: str, fields: list[tuple[str, str]] | None = None,
            version: str = "HTTP/1.1", method: str = "GET", body: bytes = b"",
            host: str = "example.test") -> Response:
        with self.wire() as w:
            w.send(request(method, target, host, fields, version, body))
            return w.read_response(method)


class RawUpstream:
    """A loopback TCP server whose per-connection behaviour is a plain function(sock, index)."""

    def __init__(self, handler: Callable[[socket.socket, int], None]) -> None:
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RawUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.close()
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(c)
            c.settimeout(5)
            threading.Thread(target=self._run, args=(c, self.accepted), daemon=True).start()

    def _run(self, c: socket.socket, index: int) -> None:
        with contextlib.suppress(OSError):
            self.handler(c, index)


def read_head(sock: socket.socket) -> bytes:
    """Read one request head (no body) from *sock*; b'' at EOF."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        buf += chunk
    return buf



@contextlib.contextmanager
def nothing() -> Iterator[None]:
    yield
