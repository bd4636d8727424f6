"""``--interface``: run ASGI 2 (class-style) and WSGI apps as ASGI 3, and ``--header``.

The server speaks ASGI 3 only; these adapters sit between it and an app of
another kind, picked once at load time, so an ASGI 3 app pays for nothing.
``auto`` decides as uvicorn does: a class is ASGI 3 only if its instances are
awaitable, a function if it is a coroutine function, an object if its
``__call__`` is one; anything else is ASGI 2 (issue 13: a class-style app was
answered 500). WSGI is never guessed (a WSGI callable looks like a plain
function); ``wsgi`` runs the app in a thread pool through a2wsgi (the
``onehop[wsgi]`` extra), the adapter uvicorn's own docs point to.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Sequence
from typing import Any, Final, cast

from onehop.server.asgi_types import ASGIApp, Message, Receive, Scope, Send

#: ``--interface`` values.
INTERFACE_CHOICES: Final = ("auto", "asgi3", "asgi2", "wsgi")
#: Threads a2wsgi runs WSGI apps in (its own default).
WSGI_THREADS: Final = 10
_ASGI2: Final = {"version": "2.0", "spec_version": "2.4"}


class InterfaceError(ImportError):
    """The interface asked for cannot be served (the message says what to install)."""


def detect(app: Any) -> str:
    """``asgi3`` or ``asgi2`` for *app*, by uvicorn's rule (see the module docstring)."""
    if inspect.isclass(app):
        return "asgi3" if hasattr(app, "__await__") else "asgi2"
    if inspect.isfunction(app):
        return "asgi3" if asyncio.iscoroutinefunction(app) else "asgi2"
    call = getattr(app, "__call__", None)  # noqa: B004 (the method itself is inspected)
    return "asgi3" if asyncio.iscoroutinefunction(call) else "asgi2"


class ASGI2App:
    """An ASGI 2 app (``app(scope)`` returns ``instance(receive, send)``) as ASGI 3; the
    scope says ``asgi.version`` ``2.0``."""

    __slots__ = ("app",)

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["asgi"] = _ASGI2
        instance = self.app(scope)
        await instance(receive, send)


def wsgi_app(app: Any, threads: int = WSGI_THREADS) -> ASGIApp:
    """A WSGI app as ASGI 3, run in a pool of *threads* (a2wsgi).

    Raises:
        InterfaceError: a2wsgi is not installed.
    """
    try:
        from a2wsgi import WSGIMiddleware  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise InterfaceError("--interface wsgi needs a2wsgi: pip install 'onehop[wsgi]'") from None
    adapted: Any = WSGIMiddleware(app, workers=threads)  # (a2wsgi types ASGI more narrowly)
    return cast("ASGIApp", adapted)


def adapt(app: Any, interface: str) -> tuple[ASGIApp, str]:
    """*app* as an ASGI 3 callable, and the interface it was taken to have.

    Raises:
        ValueError: an unknown *interface*.
        InterfaceError: ``wsgi`` without a2wsgi.
    """
    if interface not in INTERFACE_CHOICES:
        raise ValueError(f"interface must be one of {', '.join(INTERFACE_CHOICES)}, "
                         f"got {interface!r}")
    if interface == "auto":
        interface = detect(app)
    if interface == "asgi2":
        return ASGI2App(app), interface
    if interface == "wsgi":
        return wsgi_app(app), interface
    return app, interface


class DefaultHeaders:
    """Adds ``--header`` fields to every response head (before the app's own, as uvicorn
    does; a ``Server`` given here replaces onehop's, since the server adds its own only
    when the head has none)."""

    __slots__ = ("app", "headers")

    def __init__(self, app: ASGIApp, headers: Sequence[tuple[str, str]]) -> None:
        self.app = app
        self.headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*extra, *_pairs(message.get("headers", ()))]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _pairs(headers: Iterable[Any]) -> list[tuple[bytes, bytes]]:
    return [(bytes(n), bytes(v)) for n, v in headers]


def parse_header(value: str) -> tuple[str, str]:
    """``Name:Value`` (``--header``) to a pair.

    Raises:
        ValueError: no colon, or an empty or malformed name.
    """
    name, sep, text = value.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t()<>@,;\\\"/[]?={}"):
        raise ValueError(f"--header: expected NAME:VALUE, got {value!r}")
    return name, text.strip()
