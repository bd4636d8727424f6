"""Response heads the ASGI server builds from an app's header list, split once.

Most apps send the same header list on every response (hello world, JSON
endpoints differing only in Content-Length), so :class:`HeadCache` validates
and splits each distinct list (plus our ``Server`` and ``Date``) once per
``Date`` second instead of once per response; the core then serializes each
shared :class:`~onehop.core.Headers` once too.
"""

from __future__ import annotations

from typing import Any, Final

from onehop._aio.dates import DATE
from onehop.core import ConnectionInfo, Headers, split_headers

#: Entries kept before the cache starts over (a bound hostile header lists cannot grow).
HEAD_CACHE_SIZE: Final = 256


class HeadCache:
    """App header lists already validated and split by the core, keyed by their value.

    The cached :class:`Headers` are read-only, shared by responses. Owned by one
    server; touched only from its loop.
    """

    __slots__ = ("_date", "_entries")

    def __init__(self) -> None:
        self._date = b""
        self._entries: dict[Any, tuple[Headers, ConnectionInfo]] = {}

    def split(
        self, app_headers: Any, server: bool, date: bool
    ) -> tuple[Headers, ConnectionInfo]:
        """Return ``split_headers`` of our Server/Date fields plus *app_headers*."""
        today = DATE.get()
        if today is not self._date:
            self._date = today
            self._entries.clear()
        try:
            key: Any = (server, date, *app_headers)
            hit = self._entries.get(key)
        except TypeError:  # unhashable pairs (lists): no caching
            key = hit = None
        if hit is not None:
            return hit
        fields: list[tuple[bytes, bytes]] = []
        if server or date:
            for name, _ in app_headers:
                lname = name.lower()
                if lname == b"server":
                    server = False
                elif lname == b"date":
                    date = False
            if server:
                fields.append((b"Server", b"onehop"))
            if date:
                fields.append((b"Date", today))
        fields.extend(app_headers)
        result = split_headers(fields)
        if key is not None:
            if len(self._entries) >= HEAD_CACHE_SIZE:
                self._entries.clear()
            self._entries[key] = result
        return result
