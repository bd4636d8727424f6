"""Upstream servers: passive health with back-off, round-robin groups.

An upstream that refuses or resets a new connection is skipped for a
back-off period that doubles per failure (capped); a success clears it. A
group picks members round-robin, skipping those in back-off, and falls back
to the one that comes back soonest when all are down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from onehop.client.connection import Origin
from onehop.proxy.config import UPSTREAM_SCHEMES, check_upstream_url

log: Final = logging.getLogger("onehop.proxy")

#: Back-off after an upstream refuses or resets: base, doubled per failure, capped.
BACKOFF_BASE: Final = 1.0
BACKOFF_MAX: Final = 30.0


class Upstream:
    """One upstream server with passive health: refused or reset means skip for a while."""

    __slots__ = ("authority", "down_until", "failures", "label", "origin", "url")

    def __init__(self, url: str) -> None:
        scheme, host, port = check_upstream_url(url, "upstream")
        self.url = url
        #: (scheme, host, port): the pool keys its connections, and opens TLS, by it.
        self.origin: Origin = (scheme, host, port)
        self.failures = 0
        self.down_until = 0.0
        h = f"[{host}]" if ":" in host else host
        #: ``Host`` for this upstream when the client's is not forwarded (computed once).
        self.authority = (h if port == UPSTREAM_SCHEMES[scheme] else f"{h}:{port}").encode(
            "latin-1")
        #: ``host:port`` for the access log.
        self.label = f"{host}:{port}"

    def failed(self, now: float) -> None:
        """Refused or reset: back off ``BACKOFF_BASE * 2**(n-1)`` seconds, capped."""
        self.failures += 1
        self.down_until = now + min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (self.failures - 1))
        log.warning("upstream %s marked down for %.1f s", self.url, self.down_until - now)

    def succeeded(self) -> None:
        self.failures = 0
        self.down_until = 0.0


class UpstreamGroup:
    """Round-robin over members, skipping those in back-off."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.members = [Upstream(u) for u in urls]
        self._next = 0

    def pick(self, now: float, exclude: Sequence[Upstream] = ()) -> Upstream:
        """The next healthy member; if none, the one that comes back soonest."""
        members = self.members
        if len(members) == 1 and not exclude:
            return members[0]  # (healthy or not, it is the one that comes back soonest)
        n = len(members)
        for i in range(n):
            m = self.members[(self._next + i) % n]
            if m.down_until <= now and m not in exclude:
                self._next = (self._next + i + 1) % n
                return m
        candidates = [m for m in self.members if m not in exclude] or self.members
        return min(candidates, key=lambda m: m.down_until)
