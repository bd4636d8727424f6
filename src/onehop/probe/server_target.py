"""The origin server under test, and how a server check talks to it.

A server check opens fresh connections to :class:`ServerTarget` with the probe's own
socket code (``onehop.probe.wire``) and builds raw requests for its path; the checks
themselves are in ``server_connection`` and ``server_framing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from onehop.probe.wire import PeerState, Response, Wire, request


@dataclass
class ServerTarget:
    """An origin server under test, from ``http://host:port/path``."""

    host: str
    port: int
    path: str = "/"
    timeout: float = 5.0
    settle: float = 0.5
    idle_limit: float = 5.0
    missing_path: str = "/__onehop_probe_missing__"
    no_content_path: str | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_url(
        cls,
        url: str,
        timeout: float = 5.0,
        idle_limit: float = 5.0,
        no_content_path: str | None = None,
    ) -> ServerTarget:
        """Parse an ``http://`` URL; the path (with query) is what every check requests."""
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"need an http:// URL, got {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        return cls(
            parts.hostname,
            parts.port or 80,
            path,
            timeout,
            idle_limit=idle_limit,
            no_content_path=no_content_path,
        )

    @property
    def authority(self) -> str:
        """The Host field value."""
        return f"{self.host}:{self.port}"

    def wire(self) -> Wire:
        """Open a fresh connection."""
        return Wire(self.host, self.port, self.timeout)

    def req(
        self,
        fields: list[tuple[str, str]] | None = None,
        method: str = "GET",
        version: str = "HTTP/1.1",
        path: str | None = None,
        body: bytes = b"",
    ) -> bytes:
        """Build a request for the target path with the given extra fields."""
        return request(method, path or self.path, self.authority, fields, version, body)


def _once(
    t: ServerTarget, data: bytes, method: str = "GET", wait: float | None = None
) -> tuple[Response, PeerState]:
    with t.wire() as w:
        w.send(data)
        resp = w.read_response(method)
        return resp, w.peer_state(t.settle if wait is None else wait)
