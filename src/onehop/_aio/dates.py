"""The ``Date`` field value, formatted once per second (RFC 9110 §6.6.1).

Shared by every server-role connection: error answers written by the serving
endpoint and the ASGI server's response heads both carry it.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Final


class DateCache:
    """The current ``Date`` value as bytes; recomputed when the second changes.

    The same bytes object is returned all through one second, so a caller may
    compare by identity to learn that the second changed (the ASGI head cache does).
    """

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return self._value


#: The process's one cache (every loop of a process reads the same clock).
DATE: Final = DateCache()
