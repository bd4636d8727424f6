"""``--proxy-headers``: the client address and scheme from ``X-Forwarded-*``, from trusted
peers only, as uvicorn's ProxyHeadersMiddleware takes them.

A request is believed only when the peer that sent it is trusted
(``--forwarded-allow-ips``: addresses, CIDR networks, other literal names such as a
Unix socket path, or ``*``). The client is then the first address in
``X-Forwarded-For`` walked from the right that is not itself a trusted proxy (each
proxy appends the address it saw, so the right end is the one a trusted proxy wrote);
with ``*``, the left-most one. ``X-Forwarded-Proto`` sets the scheme (``ws``/``wss``
for a WebSocket).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, Final

_SCHEMES: Final = frozenset({"http", "https", "ws", "wss"})
#: Verdicts remembered per host: a peer's address is asked about on every request it
#: sends, and parsing it (``ipaddress``) cost about 6% of a small request's CPU.
MEMO_SIZE: Final = 1024


class TrustedHosts:
    """The ``--forwarded-allow-ips`` list, parsed once."""

    __slots__ = ("_memo", "always", "literals", "memo_size", "networks")

    def __init__(self, entries: Iterable[str], memo_size: int = MEMO_SIZE) -> None:
        self.always = False
        #: Peer addresses whose verdict is remembered (a keep-alive peer's address is not
        #: parsed on every request); past it the memo starts over.
        self.memo_size = memo_size
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.literals: set[str] = set()
        self._memo: dict[str, bool] = {}
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            if entry == "*":
                self.always = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.literals.add(entry)  # a name (a Unix socket path, say)

    def __contains__(self, host: str) -> bool:
        known = self._memo.get(host)
        if known is not None:
            return known
        if self.always or host in self.literals:
            trusted = True
        else:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                trusted = False
            else:
                trusted = any(address in network for network in self.networks)
        if len(self._memo) >= self.memo_size:
            self._memo.clear()
        self._memo[host] = trusted
        return trusted

    def client_of(self, forwarded_for: str) -> str | None:
        """The client in an ``X-Forwarded-For`` value (see the module docstring)."""
        hosts = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        if not hosts:
            return None
        if self.always:
            return hosts[0]
        for host in reversed(hosts):
            if host not in self:
                return host
        return hosts[0]  # every hop trusted: the left-most is the client


def apply(scope: dict[str, Any], trusted: TrustedHosts) -> None:
    """Rewrite ``scope``'s ``client`` and ``scheme`` from a trusted peer's headers."""
    client = scope["client"]
    if not trusted.always and (client is None or client[0] not in trusted):
        return
    proto = forwarded_for = None
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            proto = value.decode("latin-1").strip().lower()
        elif name == b"x-forwarded-for":
            forwarded_for = value.decode("latin-1")
    if proto in _SCHEMES:
        if scope["type"] == "websocket":
            proto = proto.replace("http", "ws")
        scope["scheme"] = proto
    if forwarded_for is not None:
        host = trusted.client_of(forwarded_for)
        if host:
            scope["client"] = (host, 0)
