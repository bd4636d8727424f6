"""What crosses a hop: strip connection-specific fields both ways, then add ours.

The core already split every received message into end-to-end ``headers`` and
:class:`~onehop.core.ConnectionInfo` (``Connection``, every field it names, the
fixed hop-by-hop set; RFC 9110 §7.6.1). This module never parses ``Connection``
again: it forwards ``headers``, decides what to do when a client *nominates* a
protected field, and adds ``Via`` (RFC 9110 §7.6.3) and ``X-Forwarded-*`` or
``Forwarded`` (RFC 7239) *after* stripping, so a client cannot name the fields
we add and have them deleted (STYLE.md, "Strip first, then hand over").

Nomination policy, per protected field (a client lists the field in
``Connection``):

- ``reject``: answer 400 and forward nothing.
- ``ignore``: treat the nomination as absent and forward the field.
- ``strip``: remove the field, as RFC 9110 §7.6.1 says.

Every use is logged on ``onehop.proxy``. Defaults, and why:

- ``X-Forwarded-For``, ``Forwarded``: **strip**. It is what the RFC asks, and
  it cannot hurt: by default we do not trust client-supplied forwarding fields
  at all, and the proxy writes its own after stripping, so the "hop-by-hop
  abuse" of making a proxy drop the client address it adds does not work.
- ``Host``, ``Content-Length``, ``Transfer-Encoding``: **reject**. No
  legitimate client nominates routing or framing fields; doing so is a probe
  for desynchronisation between hops. Refusing (400) before anything reaches
  an upstream is the safe answer; stripping ``Host`` would change which site
  the request is for.
- ``Authorization``, ``Cookie``: **strip**. The RFC rule, and removing
  credentials can only lower the request's privilege; the log line makes the
  oddity visible.

``ignore`` for ``Transfer-Encoding`` changes nothing: it is hop-by-hop anyway
and the proxy always writes its own framing. ``ignore`` for ``Content-Length``
forwards the length the core already framed the body with.

Framing is the proxy's own in both codings: a chunked body goes up chunked,
and a ``Content-Length`` body with exactly one ``Content-Length`` line holding
the decimal length the core framed it with. RFC 9110 §8.6 lets a recipient
accept ``5, 5``, two ``5`` lines or ``05``; a strict upstream (llhttp, h11)
refuses them, so forwarding them as they came would turn a request we accepted
into the upstream's 400.

Field names with an underscore (``X_Forwarded_For``) follow ``underscores``:
CGI and WSGI map ``-`` and ``_`` alike to ``HTTP_X_FORWARDED_FOR``, so such a
field can pose as one the proxy sets or strips. ``drop`` (default, nginx's
``underscores_in_headers off``) removes them, ``pass`` forwards them, ``reject``
answers 400; each use is logged.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Final

from onehop.core import ConnectionInfo, Headers, InformationalResponse, Request, Response
from onehop.core.framing import parse_content_length
from onehop.core.headers import HOP_BY_HOP_FIELDS, NO_CONNECTION_INFO

log = logging.getLogger("onehop.proxy")


class Nomination(enum.Enum):
    """What to do when ``Connection`` names a protected field."""

    REJECT = "reject"
    IGNORE = "ignore"
    STRIP = "strip"


#: Protected fields and their default policy (argued in the module docstring).
DEFAULT_NOMINATION: Final[dict[bytes, Nomination]] = {
    b"x-forwarded-for": Nomination.STRIP,
    b"forwarded": Nomination.STRIP,
    b"host": Nomination.REJECT,
    b"content-length": Nomination.REJECT,
    b"transfer-encoding": Nomination.REJECT,
    b"authorization": Nomination.STRIP,
    b"cookie": Nomination.STRIP,
}
PROTECTED_FIELDS: Final = frozenset(DEFAULT_NOMINATION)

#: Forwarding fields a client may send; dropped unless ``trust_forwarded``.
_FORWARDING: Final = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"}
)


class Underscores(enum.Enum):
    """What to do with request field names that contain ``_`` (see the module docstring)."""

    DROP = "drop"
    PASS = "pass"
    REJECT = "reject"


class ForwardedStyle(enum.Enum):
    """Which client-information fields the proxy adds upstream."""

    XFF = "x-forwarded"  # X-Forwarded-For, -Proto, -Host
    FORWARDED = "forwarded"  # RFC 7239
    NONE = "none"


@dataclass
class HeaderPolicy:
    """How headers cross the proxy.

    Attributes:
        nomination: per protected field (lower-case bytes), what a nomination does.
        forwarded: which client-information fields to add upstream.
        trust_forwarded: keep forwarding fields the client sent (and append to
            them); False (default) drops them: only a proxy behind another
            trusted proxy should believe them.
        via: the pseudonym in our ``Via`` entries (RFC 9110 §7.6.3).
        preserve_host: forward the client's ``Host``; False sends the upstream's.
        underscores: request field names with ``_``: drop (default), pass, reject (400).
    """

    nomination: dict[bytes, Nomination] = field(default_factory=lambda: dict(DEFAULT_NOMINATION))
    forwarded: ForwardedStyle = ForwardedStyle.XFF
    trust_forwarded: bool = False
    via: str = "onehop"
    preserve_host: bool = True
    underscores: Underscores = Underscores.DROP


class RequestRefused(Exception):
    """The request cannot be forwarded under the header policy (answer 400)."""


class NominationRejected(RequestRefused):
    """A client nominated a protected field under the ``reject`` policy (answer 400)."""

    def __init__(self, name: bytes) -> None:
        super().__init__(f"Connection names the protected field {name.decode('latin-1')!r}")
        self.name = name


class UnderscoreRejected(RequestRefused):
    """A field name with ``_`` under the ``reject`` underscore policy (answer 400)."""

    def __init__(self, name: bytes) -> None:
        super().__init__(f"field name {name.decode('latin-1')!r} contains an underscore")
        self.name = name


_VIA_CACHE: dict[tuple[bytes, str], tuple[bytes, bytes, bytes]] = {}


def via(version: bytes, policy: HeaderPolicy) -> tuple[bytes, bytes, bytes]:
    """Our ``Via`` field for a message received as HTTP/*version* (RFC 9110 §7.6.3): the
    one builder for requests, responses, 1xx, 101 and CONNECT's 200."""
    return _via_field(version, policy.via)


def _via_field(version: bytes, pseudonym: str) -> tuple[bytes, bytes, bytes]:
    """The ``Via: 1.1 onehop`` field: built once per (version, pseudonym), not per message."""
    field = _VIA_CACHE.get((version, pseudonym))
    if field is None:
        if len(_VIA_CACHE) > 64:  # a few versions x the configured pseudonyms, normally
            _VIA_CACHE.clear()
        field = _VIA_CACHE[version, pseudonym] = (
            b"via", b"Via", version + b" " + pseudonym.encode("latin-1"))
    return field


_XFF_CACHE: dict[str, tuple[bytes, bytes, bytes]] = {}


def _xff_field(client_ip: str) -> tuple[bytes, bytes, bytes]:
    """``X-Forwarded-For: <client_ip>`` (no earlier hops): built once per client address."""
    field = _XFF_CACHE.get(client_ip)
    if field is None:
        if len(_XFF_CACHE) > 4096:
            _XFF_CACHE.clear()
        field = _XFF_CACHE[client_ip] = (b"x-forwarded-for", b"X-Forwarded-For",
                                         client_ip.encode("latin-1"))
    return field


def _forwarded_node(ip: str) -> str:
    """A ``Forwarded`` node (RFC 7239 §6): IPv6 in quoted brackets."""
    try:
        if isinstance(ipaddress.ip_address(ip), ipaddress.IPv6Address):
            return f'"[{ip}]"'
    except ValueError:
        return '"' + ip.replace('"', "") + '"' if ip else "unknown"
    return ip


def apply_nominations(request: Request, policy: HeaderPolicy, client: str) -> list[
    tuple[bytes, bytes, bytes]
]:
    """Return the fields to forward although nominated (``ignore``); log every use.

    Raises:
        NominationRejected: a field under ``reject`` is nominated.
    """
    options = request.connection.options
    if not options or options.isdisjoint(PROTECTED_FIELDS):
        return []
    kept: list[tuple[bytes, bytes, bytes]] = []
    for name in sorted(options & PROTECTED_FIELDS):
        rule = policy.nomination.get(name, Nomination.STRIP)
        log.warning(
            "client %s nominated protected field %s in Connection: %s",
            client, name.decode("latin-1"), rule.value,
        )
        if rule is Nomination.REJECT:
            raise NominationRejected(name)
        if rule is Nomination.IGNORE and name != b"transfer-encoding":
            kept.extend(f for f in request.connection.fields.fields if f[0] == name)
    return kept


def request_is_chunked(request: Request) -> bool:
    """Whether the received request body was chunked (the core accepted only chunked TE)."""
    conn = request.connection
    return bool(conn.fields) and b"transfer-encoding" in conn.fields


def request_has_body(request: Request) -> bool:
    """Whether the received request has content (chunked, or a non-zero Content-Length,
    wherever the core filed it: a nominated Content-Length sits in ``connection``)."""
    if request.connection is NO_CONNECTION_INFO:  # the common case: nothing hop-by-hop
        for f in request.headers.fields:  # (``headers.get`` minus two calls)
            if f[0] == b"content-length":
                return f[2] != b"0"
        return False
    if request_is_chunked(request):
        return True
    length = request.headers.get(b"content-length")
    if length is None and request.connection.fields:
        length = request.connection.fields.get(b"content-length")
    return length is not None and length != b"0"


_NOTHING: Final[list[tuple[bytes, bytes, bytes]]] = []
_XFF_STYLE: Final = ForwardedStyle.XFF
_XFP: Final = {
    scheme: (b"x-forwarded-proto", b"X-Forwarded-Proto", scheme.encode())
    for scheme in ("http", "https")
}


def _xfp(scheme: str) -> tuple[bytes, bytes, bytes]:
    """The ``X-Forwarded-Proto`` field for *scheme* (prebuilt for http and https)."""
    field = _XFP.get(scheme)
    return field if field is not None else (b"x-forwarded-proto", b"X-Forwarded-Proto",
                                            scheme.encode("latin-1"))


#: What ``outbound_request`` drops from the end-to-end fields, keyed by
#: (trust_forwarded, drop_host): built once, not per request.
_DROP: Final = {
    (trust, drop_host): frozenset(
        {b"expect"} | (set() if trust else set(_FORWARDING)) | ({b"host"} if drop_host else set())
    )
    for trust in (False, True) for drop_host in (False, True)
}


def _one_content_length(fields: list[tuple[bytes, bytes, bytes]]) -> list[
    tuple[bytes, bytes, bytes]
]:
    """*fields* with their Content-Length lines (one or more, validated by the core)
    replaced by one line holding the decimal length, where it stood first."""
    values = [f[2] for f in fields if f[0] == b"content-length"]
    line = (b"content-length", b"Content-Length", b"%d" % parse_content_length(values))
    out: list[tuple[bytes, bytes, bytes]] = []
    placed = False
    for f in fields:
        if f[0] != b"content-length":
            out.append(f)
        elif not placed:
            out.append(line)
            placed = True
    return out


def _underscored(fields: list[tuple[bytes, bytes, bytes]], policy: HeaderPolicy,
                 client: str) -> list[tuple[bytes, bytes, bytes]]:
    """Apply the underscore policy to *fields*, some of whose names hold ``_``; log it.

    Raises:
        UnderscoreRejected: under ``reject``.
    """
    names = sorted({f[1].decode("latin-1") for f in fields if b"_" in f[0]})
    rule = policy.underscores
    log.warning("client %s sent field names with an underscore (%s): %s",
                client, ", ".join(names), rule.value)
    if rule is Underscores.REJECT:
        raise UnderscoreRejected(next(f[1] for f in fields if b"_" in f[0]))
    return [f for f in fields if b"_" not in f[0]]


def outbound_request(
    request: Request,
    *,
    policy: HeaderPolicy,
    client_ip: str,
    scheme: str,
    upstream_authority: bytes,
    target: bytes | None = None,
    host: bytes | None = None,
    target_authority: bytes | None = None,
    has_body: bool | None = None,
) -> Request:
    """Build the request to send upstream from a received one (already split by the core).

    End-to-end fields go on (plus nominated ones under ``ignore``), ``Expect``
    is answered by the proxy itself, then ``Via`` and the forwarding fields are
    added. Framing is the proxy's own: one ``Content-Length`` line with the
    decimal length when the client gave a length, else chunked when the
    client's body was chunked (RFC 9112 §7.1). ``TE: trailers`` goes upstream
    only when the client sent it: TE is hop-by-hop (RFC 9110 §10.1.4), so the
    proxy regenerates it, and asks only for what its client can take.

    The host the client asked for is *target_authority* when its request-target
    was in absolute-form (RFC 9112 §3.2.2: the received Host is then ignored),
    else its Host field; it goes on as ``Host`` (``preserve_host``) and
    ``X-Forwarded-Host``. *host* replaces the ``Host`` sent in any case (a
    forward proxy sends the target's). *has_body* saves recomputing
    :func:`request_has_body` when the caller knows it.

    Raises:
        NominationRejected: see :func:`apply_nominations`.
        UnderscoreRejected: see :class:`Underscores`.
    """
    received = request.connection
    options = received.options
    kept = (apply_nominations(request, policy, client_ip)
            if options and not options.isdisjoint(PROTECTED_FIELDS) else _NOTHING)
    trust = policy.trust_forwarded
    drop_host = host is not None or not policy.preserve_host or target_authority is not None
    drop = _DROP[trust, drop_host]
    in_fields = request.headers.fields
    fields = [f for f in in_fields if f[0] not in drop]
    in_host = None
    lengths = 0
    underscored = False
    for f in in_fields:  # (one pass: Host, Content-Length lines, names with "_")
        name = f[0]
        if name == b"host":
            if in_host is None:
                in_host = f[2]
        elif name == b"content-length":
            lengths += 1
        elif b"_" in name:
            underscored = True
    has_host = not drop_host and in_host is not None
    if kept:
        fields.extend(f for f in kept if f[0] not in drop)  # untrusted forwarding stays out
        has_host = not drop_host and (has_host or any(f[0] == b"host" for f in kept))
        lengths += sum(1 for f in kept if f[0] == b"content-length")
        underscored = underscored or any(b"_" in f[0] for f in kept)
    if target_authority is not None:
        in_host = target_authority
    if underscored and policy.underscores is not Underscores.PASS:
        fields = _underscored(fields, policy, client_ip)
    if lengths > 1 or (lengths == 1 and not _plain_length(fields)):
        fields = _one_content_length(fields)
    if not has_host:
        if host is None:
            host = in_host if policy.preserve_host and in_host is not None else (
                upstream_authority)
        fields.insert(0, (b"host", b"Host", host))
    fields.append(_via_field(request.http_version, policy.via))
    style = policy.forwarded
    if style is _XFF_STYLE:
        if not trust:
            # Every client-sent forwarding field was dropped above: just add ours.
            fields.append(_xff_field(client_ip))
            fields.append(_XFP.get(scheme) or _xfp(scheme))
            if in_host is not None:
                fields.append((b"x-forwarded-host", b"X-Forwarded-Host", in_host))
        else:
            ip = client_ip.encode("latin-1")
            xff = [f[2] for f in fields if f[0] == b"x-forwarded-for"]
            fields = [f for f in fields if f[0] != b"x-forwarded-for"]
            fields.append((b"x-forwarded-for", b"X-Forwarded-For", b", ".join([*xff, ip])))
            if not any(f[0] == b"x-forwarded-proto" for f in fields):
                fields.append((b"x-forwarded-proto", b"X-Forwarded-Proto", scheme.encode()))
            if in_host is not None and not any(f[0] == b"x-forwarded-host" for f in fields):
                fields.append((b"x-forwarded-host", b"X-Forwarded-Host", in_host))
    elif style is ForwardedStyle.FORWARDED:
        node = f"for={_forwarded_node(client_ip)};proto={scheme}"
        if in_host is not None:
            node += ';host="' + in_host.decode("latin-1").replace('"', "") + '"'
        fields.append((b"forwarded", b"Forwarded", node.encode("latin-1")))
    conn = NO_CONNECTION_INFO
    if has_body is None:
        has_body = request_has_body(request)
    if has_body or received is not NO_CONNECTION_INFO:
        conn_fields: list[tuple[bytes, bytes]] = []
        if has_body and not any(f[0] == b"content-length" for f in fields):
            conn_fields.append((b"Transfer-Encoding", b"chunked"))
        if received.fields:
            te = received.fields.get_list(b"te")
            if any(t.lower() == b"trailers" for t in te):
                conn_fields.append((b"TE", b"trailers"))
        if conn_fields:
            conn = ConnectionInfo((), conn_fields)
    return Request(request.method, target if target is not None else request.target,
                   Headers.from_parsed(fields), conn)


def _plain_length(fields: list[tuple[bytes, bytes, bytes]]) -> bool:
    """Whether the one Content-Length line among *fields* holds a canonical decimal."""
    for f in fields:
        if f[0] == b"content-length":
            value = f[2]
            return value.isdigit() and (value[:1] != b"0" or value == b"0")
    return True


def outbound_response(response: Response, policy: HeaderPolicy,
                      connection: ConnectionInfo = NO_CONNECTION_INFO) -> Response:
    """Build the response to send the client from the upstream's (already split).

    Everything connection-specific is gone with ``response.connection``; the
    client side's core writes its own ``Connection`` and framing, from
    *connection* (the serving endpoint's: ``close``, ``Keep-Alive``). ``Via``
    records the upstream's protocol version (RFC 9110 §7.6.3).
    """
    fields = response.headers.fields.copy()
    fields.append(_via_field(response.http_version, policy.via))
    return Response(response.status_code, Headers.from_parsed(fields), response.reason, connection)


class LastFields:
    """One connection's last outbound fields, reused while the received ones repeat.

    Consecutive messages on one connection mostly carry the same fields (a
    client sends the same Host, User-Agent and Accept each time; an origin
    the same Server and Content-Type, and a Date that changes once a second),
    and comparing two field lists is far cheaper than stripping and adding
    again. A request is remembered only when nothing in it is hop-by-hop, a
    response always (its connection fields never go on): then the outbound
    fields depend on nothing but the received ones, the HTTP version
    (``Via``) and, for a request, the upstream's authority (``Host`` when the
    client sent none). The policy is the proxy's and does not change while it
    serves; the client address is the connection's. One instance serves one
    direction of one connection; the ``Headers`` it hands out again are never
    changed by the proxy or the core.
    """

    __slots__ = ("_authority", "_headers", "_received", "_version", "client_ip", "policy",
                 "scheme")

    def __init__(self, policy: HeaderPolicy, client_ip: str, scheme: str = "http") -> None:
        self.policy = policy
        self.client_ip = client_ip
        #: The client connection's scheme (``X-Forwarded-Proto``): ``https`` over TLS.
        self.scheme = scheme
        self._received: list[tuple[bytes, bytes, bytes]] | None = None
        self._version = b""
        self._authority = b""
        self._headers = Headers.from_parsed([])

    def request(self, request: Request, upstream_authority: bytes) -> Request:
        """:func:`outbound_request` for a request without content."""
        received = request.headers.fields
        if (received == self._received and request.connection is NO_CONNECTION_INFO
                and request.http_version == self._version
                and upstream_authority == self._authority):
            return Request(request.method, request.target, self._headers)
        out = outbound_request(request, policy=self.policy, client_ip=self.client_ip,
                               scheme=self.scheme, upstream_authority=upstream_authority,
                               has_body=False)
        if request.connection is NO_CONNECTION_INFO:
            self._received = received
            self._version = request.http_version
            self._authority = upstream_authority
            self._headers = out.headers
        return out

    def response(self, response: Response,
                 connection: ConnectionInfo = NO_CONNECTION_INFO) -> Response:
        """:func:`outbound_response`."""
        received = response.headers.fields
        if received == self._received and response.http_version == self._version:
            return Response(response.status_code, self._headers, response.reason, connection)
        out = outbound_response(response, self.policy, connection)
        self._received = received
        self._version = response.http_version
        self._headers = out.headers
        return out


def outbound_informational(
    response: InformationalResponse, policy: HeaderPolicy
) -> InformationalResponse:
    """A 1xx response to relay to the client, with our ``Via`` (RFC 9110 §7.6.3, §15.2)."""
    fields = list(response.headers.fields)
    fields.append(_via_field(response.http_version, policy.via))
    return InformationalResponse(response.status_code, Headers.from_parsed(fields),
                                 response.reason)


#: Trailer fields never forwarded: connection-specific ones (RFC 9110 §7.6.1,
#: which trailers are not exempt from), and framing and routing fields, which
#: RFC 9110 §6.5.1 forbids in trailers; a recipient that wrongly merged them
#: into the header section could be made to re-frame or re-route the message.
_TRAILER_DROP: Final = HOP_BY_HOP_FIELDS | {b"content-length", b"host"}


def forward_trailers(trailers: Headers, nominated: frozenset[bytes], *,
                     underscores: bool = True) -> Headers:
    """The trailer fields to pass on: minus hop-by-hop ones and those *nominated*, and
    minus names with ``_`` unless *underscores* (a request's trailers under any
    underscore policy but ``pass``: a 400 can no longer be sent once the body is out).

    *nominated* are the ``Connection`` options of the message's head: a field
    named there is connection-specific wherever it appears in the message.
    """
    fields = trailers.fields
    if not fields:
        return trailers
    kept = [f for f in fields if f[0] not in _TRAILER_DROP and f[0] not in nominated
            and (underscores or b"_" not in f[0])]
    return trailers if len(kept) == len(fields) else Headers.from_parsed(kept)
