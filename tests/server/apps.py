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
