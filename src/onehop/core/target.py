"""Request-target forms and the Host field (RFC 9112 §3.2, §3.3).

Which form is valid depends on the method: CONNECT takes only authority-form,
``*`` goes only with OPTIONS, everything else takes origin-form or
absolute-form. A Host must be present exactly once in HTTP/1.1.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from onehop.errors import DuplicateHost, InvalidHost, InvalidRequestTarget, MissingHost

# Possessive runs (Python 3.11+): the same language, no per-character alternation.
_REG_NAME: Final = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=]++|%[0-9A-Fa-f]{2})*+"
_IP_LITERAL: Final = rb"\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+\]"
_HOST_RE: Final = re.compile(rb"(?:" + _IP_LITERAL + rb"|" + _REG_NAME + rb")(?::[0-9]*)?")
_AUTHORITY_RE: Final = re.compile(
    rb"(?:" + _IP_LITERAL + rb"|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+):[0-9]{1,5}"
)
_ABSOLUTE_RE: Final = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*:[^#]*")
#: An ``http``/``https`` absolute-form target: scheme, authority, then the rest (path-abempty
#: and query), split without judging the authority (:func:`parse_absolute_form` does).
_HTTP_URI_RE: Final = re.compile(rb"([Hh][Tt][Tt][Pp][Ss]?)://([^/?]*)(.*)")
#: host [ ":" port ] of an ``http`` URI's authority (RFC 3986 §3.2.2, §3.2.3): no userinfo.
_URI_AUTHORITY_RE: Final = re.compile(
    rb"(" + _IP_LITERAL + rb"|" + _REG_NAME + rb")(?::([0-9]*))?"
)
_DEFAULT_PORTS: Final = {b"http": 80, b"https": 443}


class AbsoluteTarget(NamedTuple):
    """An ``http``/``https`` request-target in absolute-form, split (RFC 9112 §3.2.2)."""

    #: ``http`` or ``https``, lower-case.
    scheme: bytes
    #: ``host[:port]`` as received: what a server uses instead of the Host field.
    authority: bytes
    #: The host without the port (an IPv6 literal keeps its brackets).
    host: bytes
    #: The port given, or the scheme's default.
    port: int
    #: The origin-form equivalent: the path (``/`` when empty, RFC 9112 §3.2.1) and query.
    origin_form: bytes


def parse_absolute_form(target: bytes) -> AbsoluteTarget | None:
    """Split an absolute-form target of the ``http`` or ``https`` scheme; None for any
    other scheme (a forward proxy may still relay those; an origin cannot serve them).

    RFC 9110 §4.2.1: "A sender MUST NOT generate an "http" URI with an empty host
    identifier. A recipient that processes such a URI reference MUST reject it as
    invalid." RFC 9110 §4.2.4: "A recipient SHOULD parse for userinfo and treat its
    presence as an error". So ``http:/admin``, ``http:admin``, ``http://@h/``,
    ``http://u@h/`` and a port that is not a number up to 65535 (``http://h:8:0/``)
    are refused here, once, for server and proxy alike.

    Raises:
        InvalidRequestTarget: an ``http``/``https`` target that breaks those rules.
    """
    m = _HTTP_URI_RE.fullmatch(target)
    if m is None:
        scheme = target.partition(b":")[0].lower()
        if scheme in _DEFAULT_PORTS:
            raise InvalidRequestTarget(
                f"an {scheme.decode()} URI needs '//' and a host: {target[:60]!r}"
            )
        return None
    scheme_raw, authority, rest = m.groups()
    scheme = scheme_raw.lower()
    if b"@" in authority:
        raise InvalidRequestTarget("userinfo in the request-target is not allowed "
                                   "(RFC 9110 §4.2.4)")
    am = _URI_AUTHORITY_RE.fullmatch(authority)
    if am is None or not am[1]:
        raise InvalidRequestTarget(f"invalid authority in the request-target: {authority[:60]!r}")
    host, port_text = am.groups()
    port = _DEFAULT_PORTS[scheme]
    if port_text:
        if len(port_text) > 5 or int(port_text) > 65535:
            raise InvalidRequestTarget(f"invalid port in the request-target: {authority[:60]!r}")
        port = int(port_text)
    origin_form = rest if rest[:1] == b"/" else b"/" + rest
    return AbsoluteTarget(scheme, authority, host, port, origin_form)


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
        # (find, not ``in``: ``bytes in bytes`` first tries the operand as an int and
        # builds and drops a TypeError, ~2k instructions, before it searches.)
        if target.find(b"#") >= 0:
            raise InvalidRequestTarget("request-target must not contain a fragment")
        return
    if target == b"*":
        if method != b"OPTIONS":
            raise InvalidRequestTarget("asterisk-form is allowed only for OPTIONS")
        return
    if _ABSOLUTE_RE.fullmatch(target) is None:
        raise InvalidRequestTarget(f"invalid request-target {target[:60]!r}")
    parse_absolute_form(target)  # an http(s) URI must also have a valid authority


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
    if host not in _VALID_HOSTS:
        if _HOST_RE.fullmatch(host) is None:
            raise InvalidHost(f"invalid Host value {host[:60]!r}")
        if len(_VALID_HOSTS) < _VALID_HOSTS_SIZE and len(host) < 256:
            _VALID_HOSTS.add(host)
    return host


#: Host values already found valid: a server sees the same few on every request, so
#: the expression runs once per value (measured: ~3k instructions a request). Bounded,
#: and only valid values enter, so hostile requests cannot grow it past its size.
_VALID_HOSTS: set[bytes] = set()
_VALID_HOSTS_SIZE: Final = 256
