"""A tiny ASGI app for running the probe against uvicorn: reads the body, answers text."""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status = 404 if scope["path"].startswith("/__onehop_probe_missing") else 200
    body = b"hello from uvicorn\n"
    if scope["path"] == "/204":
        status, body = 204, b""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")]
            + ([(b"content-length", b"%d" % len(body))] if status != 204 else []),
        }
    )
    await send({"type": "http.response.body", "body": body})
