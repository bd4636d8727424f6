"""Forward-proxy rules: absolute-form targets and CONNECT, behind an allow-list.

A forward proxy that relays to any host is an open proxy: anyone who reaches
it can launder traffic through it or reach hosts behind it. So nothing is
allowed unless the allow-list says so (``ForwardPolicy()`` denies all), and a
denied destination gets 403 before any connection is opened.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from onehop.core.target import parse_absolute_form
from onehop.errors import InvalidRequestTarget


class ForwardDenied(Exception):
    """The destination is not on the allow-list (answer 403)."""


class BadForwardTarget(Exception):
    """The request-target cannot be forwarded (answer 400)."""


@dataclass
class ForwardPolicy:
    """Which destinations a forward proxy may reach.

    ``allow`` holds ``host:port`` patterns (``fnmatch`` globs, e.g.
    ``"*.example.com:443"``, ``"127.0.0.1:*"``); ``connect_ports`` limits the
    ports a CONNECT tunnel may open (443 by default, as Squid does).
    """

    allow: list[str] = field(default_factory=list)
    connect_ports: frozenset[int] | None = frozenset({443})

    def permits(self, host: str, port: int, *, connect: bool = False) -> bool:
        """Whether *host*:*port* is reachable through this proxy."""
        if connect and self.connect_ports is not None and port not in self.connect_ports:
            return False
        key = f"{host.lower()}:{port}"
        return any(fnmatch.fnmatchcase(key, p.lower()) for p in self.allow)

    def check(self, host: str, port: int, *, connect: bool = False) -> None:
        """Raise :class:`ForwardDenied` unless allowed, naming the rule that refused (the
        CONNECT ports, or the allow-list) but not its values: the client learns which
        setting to ask about, not the operator's list."""
        if connect and self.connect_ports is not None and port not in self.connect_ports:
            raise ForwardDenied(f"CONNECT to port {port} is not allowed (not among the CONNECT "
                                "ports: forward.connect_ports, --connect-port)")
        if not self.permits(host, port, connect=connect):
            raise ForwardDenied(f"destination {host}:{port} matches no allow-list pattern "
                                "(forward.allow, --allow)")


def split_authority(authority: bytes, default_port: int) -> tuple[str, int]:
    """``host[:port]`` (IPv6 in brackets) to (host, port).

    Raises:
        BadForwardTarget: not a valid authority.
    """
    text = authority.decode("latin-1")
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise BadForwardTarget(f"bad authority {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise BadForwardTarget(f"bad authority {text!r}")
            port = int(rest[1:])
    elif ":" in text:
        host, _, p = text.rpartition(":")
        if not p.isdigit():
            raise BadForwardTarget(f"bad port in {text!r}")
        port = int(p)
    if not host or not 0 < port < 65536:
        raise BadForwardTarget(f"bad authority {text!r}")
    return host, port


def parse_absolute(target: bytes) -> tuple[str, str, int, bytes, bytes]:
    """Split an absolute-form target (RFC 9112 §3.2.2) for forwarding, by the core's rule
    (:func:`onehop.core.target.parse_absolute_form`).

    Returns (scheme, host, port, authority, origin-form target); an IPv6 host
    without its brackets.

    Raises:
        BadForwardTarget: not a valid ``http://`` absolute-form target.
    """
    try:
        absolute = parse_absolute_form(target)
    except InvalidRequestTarget as exc:
        raise BadForwardTarget(str(exc)) from None
    if absolute is None or absolute.scheme != b"http":
        raise BadForwardTarget("only http:// absolute-form targets are forwarded "
                               "(https goes through CONNECT)")
    host = absolute.host.decode("latin-1")
    if host.startswith("["):
        host = host[1:-1]
    return "http", host, absolute.port, absolute.authority, absolute.origin_form
