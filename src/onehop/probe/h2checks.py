"""The probe's HTTP/2 checks (``onehop probe server URL --http2``): one per RFC 9113 sentence.

An HTTP/2 message has no connection-specific fields (RFC 9113 §8.2.2): a response
that carries ``Connection``, ``Keep-Alive``, ``Proxy-Connection``,
``Transfer-Encoding`` or ``Upgrade`` is malformed, and Safari refuses it (Chrome and
Firefox let it through, which is how such servers go unnoticed). A request that
carries one is malformed too, and must not be served: an HTTP/2 front end that
passed ``Transfer-Encoding`` on to an HTTP/1.1 back end would let a client smuggle
requests. The checks judge from the wire, through :class:`~onehop.probe.h2wire.H2Wire`
(the ``h2`` library as framer, its validation off), never through onehop's server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from onehop.probe.checks import Check, Outcome, Verdict, _register
from onehop.probe.h2wire import H2Response, H2Wire, NotHttp2
from onehop.probe.wire import WireError

H2_CHECKS: list[Check] = []

#: Connection-specific in HTTP/2 whatever the value (RFC 9113 §8.2.2); ``te`` is
#: allowed only in a request, and only as ``trailers``.
CONNECTION_SPECIFIC = ("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                       "upgrade")
PROTOCOL_ERROR = 0x1
SAFARI = "Safari refuses this response (RFC 9113 §8.2.2)"


@dataclass
class H2Target:
    """An HTTP/2 server (or proxy) under test: ``http://`` by prior knowledge (RFC 9113
    §3.3), ``https://`` by ALPN ``h2`` (§3.2); *paths* are fetched by the field checks."""

    host: str
    port: int
    tls: bool
    paths: list[str]
    timeout: float = 5.0
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_url(cls, url: str, paths: list[str] | None = None,
                 timeout: float = 5.0) -> H2Target:
        """Parse an ``http://`` or ``https://`` URL; its path is fetched first.

        Raises:
            ValueError: not an http(s) URL.
        """
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"need an http:// or https:// URL, got {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        tls = parts.scheme == "https"
        return cls(parts.hostname, parts.port or (443 if tls else 80), tls,
                   [path, *(p for p in paths or [] if p != path)], timeout)

    @property
    def authority(self) -> str:
        default = 443 if self.tls else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def wire(self) -> H2Wire:
        """A fresh HTTP/2 connection.

        Raises:
            NotHttp2: ALPN chose something else.
            WireError: the handshake failed.
        """
        return H2Wire(self.host, self.port, tls=self.tls, timeout=self.timeout,
                      server_name=self.host)

    def get(self, path: str, fields: list[tuple[str, str]] | None = None
            ) -> tuple[H2Response, tuple[int, int] | None]:
        """One GET on a fresh connection (a malformed one may cost the connection), and
        the server's GOAWAY (last stream id, error code) if it sent one."""
        with self.wire() as wire:
            response = wire.get(path, self.authority, fields=fields, scheme=self.scheme)
            return response, wire.goaway


def _h2(check_id: str, section: str,
        sentence: str) -> Callable[[Callable[[Any], Outcome]], Callable[[Any], Outcome]]:
    return _register(H2_CHECKS, check_id, section, sentence)


def _show(response: H2Response, names: list[str]) -> str:
    fields = response.fields + response.trailers
    shown = [f"{n.decode('latin-1')}: {v.decode('latin-1')}" for n, v in fields
             if n.decode("latin-1").lower() in names]
    return ", ".join(shown)


@_h2("h2-speaks", "RFC 9113 §3.4",
     "The server connection preface consists of a potentially empty SETTINGS frame that "
     "MUST be the first frame the server sends in the HTTP/2 connection.")
def h2_speaks(t: H2Target) -> Outcome:
    try:
        with t.wire() as wire:
            wire.settle(0.3)
            if not wire.remote_settings and wire.closed:
                return Verdict.FAIL, "no SETTINGS: the connection closed after the preface"
            how = "ALPN h2" if t.tls else "prior knowledge"
            return Verdict.PASS, f"SETTINGS after the preface ({how}): {wire.remote_settings}"
    except NotHttp2 as exc:
        return Verdict.FAIL, str(exc)


@_h2("h2-no-connection-specific-fields", "RFC 9113 §8.2.2",
     "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific "
     "header fields.")
def h2_no_connection_fields(t: H2Target) -> Outcome:
    bad: list[str] = []
    seen: list[str] = []
    with t.wire() as wire:
        for path in t.paths:
            response = wire.get(path, t.authority, scheme=t.scheme)
            seen.append(f"{path} {response.status}")
            names = [n.lower() for n in response.names()]
            te = [v for n, v in response.fields + response.trailers if n.lower() == b"te"]
            found = [n for n in CONNECTION_SPECIFIC if n in names]
            if found or te:
                bad.append(f"{path}: {_show(response, [*found, 'te'])}")
    if bad:
        return Verdict.FAIL, "; ".join(bad) + f" ({SAFARI})"
    return Verdict.PASS, "none in " + ", ".join(seen)


@_h2("h2-lowercase-field-names", "RFC 9113 §8.2.1",
     "Field names MUST be converted to lowercase when constructing an HTTP/2 message.")
def h2_lowercase(t: H2Target) -> Outcome:
    response, _ = t.get(t.paths[0])
    upper = [n for n in response.names() if n != n.lower()]
    if upper:
        return Verdict.FAIL, f"upper-case field names: {', '.join(upper)}"
    return Verdict.PASS, f"{len(response.names())} field names, all lower-case"


def _rejected(t: H2Target, fields: list[tuple[str, str]]) -> Outcome:
    """Send a GET carrying *fields*: a malformed request must not be served (RFC 9113
    §8.1.1: a stream error of type PROTOCOL_ERROR; §5.4.1 allows a connection error;
    "a server MAY send an HTTP response prior to closing or resetting the stream")."""
    sent = ", ".join(f"{n}: {v}" for n, v in fields)
    try:
        response, goaway = t.get(t.paths[0], fields)
    except WireError as exc:
        return Verdict.PASS, f"{sent}: refused ({exc})"
    status = response.status
    if response.reset is not None and status is None:
        return Verdict.PASS, f"{sent}: stream reset with {_code(response.reset)}"
    if status is None and goaway is not None:
        return Verdict.PASS, (f"{sent}: connection error, GOAWAY {_code(goaway[1])} "
                              "(RFC 9113 §5.4.1 allows it)")
    if status is not None and 400 <= status < 500:
        return Verdict.PASS, f"{sent}: answered {status}"
    if status is None:
        return Verdict.INFO, f"{sent}: no answer (the connection closed)"
    return Verdict.FAIL, f"{sent}: served as {status}, not treated as malformed"


def _code(code: int) -> str:
    names = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR",
             0x7: "REFUSED_STREAM", 0x8: "CANCEL"}
    return names.get(code, f"0x{code:x}")


@_h2("h2-rejects-connection-in-request", "RFC 9113 §8.2.2",
     "Any message containing connection-specific header fields MUST be treated as "
     "malformed.")
def h2_rejects_connection(t: H2Target) -> Outcome:
    return _rejected(t, [("connection", "keep-alive")])


@_h2("h2-rejects-transfer-encoding-in-request", "RFC 9113 §8.2.2",
     "Any message containing connection-specific header fields MUST be treated as "
     "malformed (a Transfer-Encoding passed on to HTTP/1.1 would frame the request anew).")
def h2_rejects_te_chunked(t: H2Target) -> Outcome:
    return _rejected(t, [("transfer-encoding", "chunked")])


@_h2("h2-rejects-te-other-than-trailers", "RFC 9113 §8.2.2",
     "The only exception to this is the TE header field, which MAY be present in an "
     "HTTP/2 request; when it is, it MUST NOT contain any value other than \"trailers\".")
def h2_rejects_te_gzip(t: H2Target) -> Outcome:
    return _rejected(t, [("te", "gzip")])


@_h2("h2-accepts-te-trailers", "RFC 9113 §8.2.2",
     "TE ... MAY be present in an HTTP/2 request [with the value \"trailers\"].")
def h2_accepts_te_trailers(t: H2Target) -> Outcome:
    response, goaway = t.get(t.paths[0], [("te", "trailers")])
    if response.status is None:
        code = response.reset if response.reset is not None else goaway and goaway[1]
        return Verdict.FAIL, f"te: trailers refused ({_code(code or 0)})"
    return Verdict.PASS, f"te: trailers answered {response.status}"


@_h2("h2-rejects-uppercase-field-name", "RFC 9113 §8.2.1",
     "A request or response containing uppercase characters in field names MUST be "
     "treated as malformed.")
def h2_rejects_uppercase(t: H2Target) -> Outcome:
    return _rejected(t, [("X-Probe-Upper", "1")])
