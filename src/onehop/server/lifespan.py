"""The ASGI lifespan protocol: startup before the first connection, shutdown after the last."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from onehop.server.config import ASGIApp, Message

logger = logging.getLogger("onehop.server")


class Lifespan:
    """Runs the app's lifespan task; ``mode`` is ``auto`` (tolerate apps without it), ``on`` or
    ``off``. ``state`` is the dict copied into every request scope.

    Owned by the :class:`~onehop.server.Server`; touched only from its loop.
    """

    def __init__(self, app: ASGIApp, mode: str = "auto") -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.failed = False
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error = ""

    async def startup(self) -> bool:
        """Start the app; return False when it reported startup failure (or ``on`` and no
        support)."""
        if self.mode == "off":
            return True
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._queue.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self.failed:
            logger.error("Application startup failed. %s", self._error)
            return False
        return True

    async def shutdown(self) -> None:
        """Tell the app to shut down and wait for it (errors are logged)."""
        if self._task is None or self._task.done():
            return
        await self._queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise
            if self.mode == "on" or self._startup_done.is_set():
                self.failed = not self._startup_done.is_set() or self.failed
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
            else:
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
        finally:
            if not self._startup_done.is_set() and self.mode == "on":
                self.failed = True
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> Message:
        return await self._queue.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self.failed = True
            self._error = message.get("message", "")
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            logger.error("Application shutdown failed. %s", message.get("message", ""))
            self._shutdown_done.set()
