"""Request-target forms and the Host field (RFC 9112 §3.2, §3.3).

Which form is valid depends on the method: CONNECT takes only authority-form,
``*`` goes only with OPTIONS, everything else takes origin-form or
absolute-form. A Host must be present exactly once in HTTP/1.1.
"""

from __future__ import annotations

import re
from typing import Final

from onehop.errors import DuplicateHost, InvalidHost, InvalidRequestTarget, MissingHost

# Possessive runs (Python 3.11+): the same language, no per-character alternation.
_REG_NAME: Final = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=]++|%[0-9A-Fa-f]{2})*+"
_IP_LITERAL: Final = rb"\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+\]"
_HOST_RE: Final = re.compile(rb"(?:" + _IP_LITERAL + rb"|" + _REG_NAME + rb")(?::[0-9]*)?")
_AUTHORITY_RE: Final = re.compile(
    rb"(?:" + _IP_LITERAL + rb"|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+):[0-9]{1,5}"
)
_ABSOLUTE_RE: Final = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*:[^#]*")


def check_request_target(method: bytes, target: bytes) -> None:
    """Reject a request-target whose form does not fit the method (RFC 9112 §3.2).

    Raises:
        InvalidRequestTarget: with a message naming the form expected.
    """
    first = target[:1]
    if method == b"CONNECT":
        if _AUTHORITY_RE.fullmatch(target) is None:
            raise InvalidRequestTarget("CONNECT needs an authority-form target (host:port)")
        return
    if first == b"/":
        if b"#" in target:
            raise InvalidRequestTarget("request-target must not contain a fragment")
        return
    if target == b"*":
        if method != b"OPTIONS":
            raise InvalidRequestTarget("asterisk-form is allowed only for OPTIONS")
        return
    if _ABSOLUTE_RE.fullmatch(target) is None:
        raise InvalidRequestTarget(f"invalid request-target {target[:60]!r}")


def check_host(hosts: list[bytes] | None, http_version: bytes) -> bytes | None:
    """Check the Host field lines' count and syntax; return the value (RFC 9112 §3.2).

    "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
    request message that lacks a Host header field and to any request message
    that contains more than one Host header field line or a Host header field
    with an invalid field value."

    Raises:
        MissingHost, DuplicateHost, InvalidHost.
    """
    if not hosts:
        if http_version == b"1.0":
            return None
        raise MissingHost("HTTP/1.1 request without a Host field")
    if len(hosts) > 1:
        raise DuplicateHost("more than one Host field line")
    host = hosts[0]
    if _HOST_RE.fullmatch(host) is None:
        raise InvalidHost(f"invalid Host value {host[:60]!r}")
    return host
