"""Apps importable by ``module:attribute`` for tests that start ``onehop serve`` as a process."""

from __future__ import annotations

import os
from typing import Any


async def app(scope: Any, receive: Any, send: Any) -> None:
    """Answers ``pid=<worker pid>`` so a test can tell which process served it."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"pid=%d" % os.getpid()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


#: A page with many resources, each answered by :func:`leaky_site` with every
#: connection-specific field set; the page records how each one came (HTTP/2 tests).
RESOURCES = 40
PAGE = ("<!doctype html><title>h2</title><script>"
        "const urls = [...Array(" + str(RESOURCES) + ").keys()].map(i => '/r/' + i + '.js');"
        "Promise.all(urls.map(u => fetch(u).then(r => r.text()))).then(bodies => {"
        "  const nav = performance.getEntriesByType('navigation')[0].nextHopProtocol;"
        "  const res = performance.getEntriesByType('resource').map(e => e.nextHopProtocol);"
        "  window.verdict = JSON.stringify({ok: bodies.filter(b => b.startsWith('ok')).length,"
        "    nav: nav, protocols: [...new Set(res)]});"
        "}, err => { window.verdict = JSON.stringify({error: String(err)}); });"
        "</script>")


async def leaky_site(scope: Any, receive: Any, send: Any) -> None:
    """The page above and its resources, every answer with Connection, a field it
    nominates, Keep-Alive, Transfer-Encoding and Upgrade set by the app."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/":
        body, kind = PAGE.encode(), b"text/html"
    else:
        body, kind = b"ok " + scope["path"].encode(), b"text/javascript"
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", kind), (b"connection", b"keep-alive, x-hop"),
        (b"keep-alive", b"timeout=5"), (b"transfer-encoding", b"chunked"),
        (b"x-hop", b"1"), (b"upgrade", b"h2c"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
