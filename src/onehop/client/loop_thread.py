"""``LoopThread``: one private event loop in a daemon thread, for blocking callers.

The sync httpx transport (issue 15) runs onehop's pool, with every connection
guarantee it has, on this loop instead of re-implementing it with blocking
sockets: one set of reuse and resend rules, one place to get them right. Blocking
callers in any thread hand it coroutines with :meth:`LoopThread.run` and wait for
the result; the pool and its connections are only ever touched from the loop's
thread, so they need no locks.

The price is two thread switches per call; ``benchmarks`` numbers in
``docs/client.md`` show it is small next to an exchange.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from onehop._aio.loop import new_event_loop
from onehop.client.errors import ClientClosed

T = TypeVar("T")


class LoopThread:
    """An event loop on a thread of its own, started on first use.

    Thread-safe: :meth:`run` may be called from any number of threads at once;
    each call becomes a task on the loop. Never call :meth:`run` from a
    coroutine running on this loop (it would wait for itself): that raises
    ``RuntimeError``.
    """

    def __init__(self, name: str = "onehop-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def started(self) -> bool:
        """Whether the thread was started (and not yet closed)."""
        return self._thread is not None and not self._closed

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise ClientClosed("the transport is closed")
            loop = self._loop
            if loop is None:
                loop = self._loop = new_event_loop()
                ready = threading.Event()
                self._thread = threading.Thread(
                    target=self._serve, args=(loop, ready), name=self._name, daemon=True
                )
                self._thread.start()
                ready.wait()
            return loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run *coro* on the loop and return its result, blocking this thread meanwhile.

        If this thread is interrupted while waiting (``KeyboardInterrupt``), the
        task is cancelled, so its connection is closed rather than left half-used.

        Raises:
            ClientClosed: the loop thread was closed.
            RuntimeError: called from the loop's own thread.
            whatever *coro* raises.
        """
        if self._thread is not None and threading.get_ident() == self._thread.ident:
            coro.close()
            raise RuntimeError("LoopThread.run called from its own loop: it would wait forever")
        try:
            loop = self._ensure()
        except BaseException:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ClientClosed("the request was cancelled: the transport closed") from None
        except BaseException:
            future.cancel()
            raise

    def close(self, last: Coroutine[Any, Any, object] | None = None) -> None:
        """Run *last* (e.g. closing the pool) on the loop, then stop it and join the thread.

        Tasks still running for callers in other threads are cancelled first, so
        they get :class:`ClientClosed` instead of waiting forever. Idempotent; a
        loop never started only closes *last* unawaited.
        """
        with self._lock:
            if self._closed:
                if last is not None:
                    last.close()
                return
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                self._closed = True
                if last is not None:
                    last.close()
                return
        try:
            if last is not None:
                asyncio.run_coroutine_threadsafe(last, loop).result()
        finally:
            # Callers still waiting in other threads get ClientClosed, not a hang.
            asyncio.run_coroutine_threadsafe(_cancel_others(), loop).result()
            with self._lock:
                self._closed = True
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


async def _cancel_others() -> None:
    """Cancel every task on this loop but the current one, and wait for them to end."""
    me = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not me]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
