"""What a request is made of before the core frames it: the URL split into origin,
target and ``Host`` (RFC 9112 §3.2, memoised), the caller's headers merged and checked
(a hop-by-hop field only when ``Connection`` lists it, RFC 9110 §7.6.1), and a JSON body.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlsplit

from onehop.client.connection import Origin
from onehop.client.errors import InvalidURL, UnsupportedScheme
from onehop.client.headers import HeaderMap
from onehop.core import ConnectionInfo, Headers
from onehop.errors import HopByHopInHeaders

HeaderArg = (
    Headers | Mapping[str, str] | list[tuple[str, str]] | list[tuple[bytes, bytes]] | None
)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
MEMO_SIZE: Final = 512
_URLS: dict[str, tuple[Origin, bytes, bytes]] = {}
_VISIBLE_ASCII: Final = "".join(map(chr, range(0x21, 0x7F)))


def listed_only(conn: ConnectionInfo) -> ConnectionInfo:
    """Keep hop-by-hop fields the caller listed in ``Connection``; reject the rest.

    The issue: never send a hop-by-hop field the caller passed by mistake
    (RFC 9110 §7.6.1). ``Connection`` itself becomes options the writer lists.

    Raises:
        HopByHopInHeaders: a hop-by-hop field not named by ``Connection``.
    """
    if not conn.fields:
        return conn
    kept = []
    for lname, raw, value in conn.fields.fields:
        if lname == b"connection":
            continue
        if lname not in conn.options:
            raise HopByHopInHeaders(
                f"{raw.decode('latin-1')!r} is hop-by-hop (RFC 9110 §7.6.1): list it in "
                "Connection to send it on purpose, or drop it"
            )
        kept.append((raw, value))
    return ConnectionInfo(conn.options, kept)


def header_fields(headers: HeaderArg) -> Headers:
    if headers is None:
        return Headers()
    if isinstance(headers, Headers):
        return headers
    if isinstance(headers, HeaderMap):
        return headers.fields
    if isinstance(headers, Mapping):
        return Headers(list(headers.items()))
    return Headers(headers)


def with_length_in_place(e2e: Headers, length: bytes) -> Headers:
    """*e2e* with its first ``Content-Length`` line set to *length* and any others gone."""
    fields: list[tuple[bytes, bytes, bytes]] = []
    placed = False
    for f in e2e.fields:
        if f[0] == b"content-length":
            if placed:
                continue
            placed = True
            f = (f[0], f[1], length)
        fields.append(f)
    return Headers.from_parsed(fields)


def json_body(value: Any, headers: HeaderArg) -> tuple[bytes, HeaderArg]:
    """*value* as compact UTF-8 JSON (httpx's encoding), and *headers* with
    ``Content-Type: application/json`` unless they set a type (RFC 8259 §11).

    Raises:
        TypeError: *value* holds something JSON cannot encode (or NaN/Infinity,
            which are not JSON: RFC 8259 §6).
    """
    try:
        body = jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"),
                             allow_nan=False).encode("utf-8")
    except ValueError as exc:
        raise TypeError(f"cannot send as JSON: {exc}") from None
    fields = header_fields(headers)
    if b"content-type" not in fields:
        fields = fields.with_field(b"Content-Type", b"application/json")
    return body, fields


def origin_of(url: str) -> Origin:
    return parse_url(url)[0]


def parse_url(url: str) -> tuple[Origin, bytes, bytes]:
    """Split a URL into the origin, the request-target and the Host value (RFC 9112 §3.2).

    Memoised: a client usually asks for the same few URLs again and again.
    """
    parsed = _URLS.get(url)
    if parsed is None:
        parsed = split_url(url)
        if len(_URLS) >= MEMO_SIZE:
            _URLS.clear()
        _URLS[url] = parsed
    return parsed


def split_url(url: str) -> tuple[Origin, bytes, bytes]:
    try:
        parts = urlsplit(url)
        port_given = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", a port out of range or not a number
        raise InvalidURL(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsupportedScheme(f"unsupported URL scheme in {url!r}: use http or https")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"no host in {url!r}")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURL(f"invalid host name in {url!r}: {exc}") from None
    port = port_given or _DEFAULT_PORTS[scheme]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # A request-target is visible ASCII only (RFC 9112 §3.2, RFC 3986 §2.1): send
    # spaces, controls and non-ASCII as UTF-8 percent-encoded octets; keep the rest.
    target = quote(target, safe=_VISIBLE_ASCII)
    shown = f"[{host}]" if ":" in host else host
    host_value = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    return (scheme, host, port), target.encode("ascii"), host_value.encode("ascii")


