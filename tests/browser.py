"""Headless Chromium as a test peer, driven over the DevTools protocol (no extra packages).

``Chromium().run(url, expression)`` opens *url* in a fresh headless Chromium
(Debian's ``chromium``), then evaluates the JavaScript *expression* until it gives a
truthy value (a page's script writes its verdict into a global) and returns it.
The browser is started per call with its own profile and killed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from typing import Any

import pytest
import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")

#: Flags for a quiet headless run in a sandbox without network (see the env notes).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(url: str, expression: str, *, timeout: float = 15.0,
        extra_flags: list[str] | None = None) -> Any:
    """Load *url* and return the first truthy value of *expression* (None on timeout)."""
    assert CHROMIUM is not None
    port = _free_port()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, *(extra_flags or []), f"--remote-debugging-port={port}",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            target = _page_target(port, timeout)
            return asyncio.run(_drive(target, url, expression, timeout))
        finally:
            # Chromium's helper processes share its session: stop them all.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _page_target(port: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(
                f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
            for entry in json.loads(r.read()):
                if entry.get("type") == "page":
                    return str(entry["webSocketDebuggerUrl"])
        time.sleep(0.1)
    raise RuntimeError("chromium did not start")


async def _drive(target: str, url: str, expression: str, timeout: float) -> Any:
    async with websockets.connect(target, max_size=None) as cdp:
        ids = iter(range(1, 1_000_000))

        async def call(method: str, **params: Any) -> dict[str, Any]:
            msg_id = next(ids)
            await cdp.send(json.dumps({"id": msg_id, "method": method, "params": params}))
            while True:
                reply = json.loads(await cdp.recv())
                if reply.get("id") == msg_id:
                    result: dict[str, Any] = reply.get("result", {})
                    return result

        await call("Page.enable")
        await call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = await call("Runtime.evaluate", expression=expression, returnByValue=True)
            value = got.get("result", {}).get("value")
            if value:
                return value
            await asyncio.sleep(0.1)
        return None
