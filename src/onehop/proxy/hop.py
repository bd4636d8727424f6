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
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Final

from onehop.core import ConnectionInfo, Headers, InformationalResponse, Request, Response
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
    """

    nomination: dict[bytes, Nomination] = field(default_factory=lambda: dict(DEFAULT_NOMINATION))
    forwarded: ForwardedStyle = ForwardedStyle.XFF
    trust_forwarded: bool = False
    via: str = "onehop"
    preserve_host: bool = True


class NominationRejected(Exception):
    """A client nominated a protected field under the ``reject`` policy (answer 400)."""

    def __init__(self, name: bytes) -> None:
        super().__init__(f"Connection names the protected field {name.decode('latin-1')!r}")
        self.name = name


_VIA_CACHE: dict[tuple[bytes, str], bytes] = {}


def _via_entry(version: bytes, pseudonym: str) -> bytes:
    """``1.1 onehop``: built once per (version, pseudonym), not per message."""
    entry = _VIA_CACHE.get((version, pseudonym))
    if entry is None:
        if len(_VIA_CACHE) > 64:  # a few versions x the configured pseudonyms, normally
            _VIA_CACHE.clear()
        entry = _VIA_CACHE[version, pseudonym] = version + b" " + pseudonym.encode("latin-1")
    return entry


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
    if not request.connection.fields:  # the common case: neither chunked nor nominated
        length = request.headers.get(b"content-length")
        return length is not None and length != b"0"
    if request_is_chunked(request):
        return True
    length = request.headers.get(b"content-length")
    if length is None and request.connection.fields:
        length = request.connection.fields.get(b"content-length")
    return length is not None and length != b"0"


_NOTHING: Final[list[tuple[bytes, bytes, bytes]]] = []
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


def outbound_request(
    request: Request,
    *,
    policy: HeaderPolicy,
    client_ip: str,
    scheme: str,
    upstream_authority: bytes,
    target: bytes | None = None,
    host: bytes | None = None,
    has_body: bool | None = None,
) -> Request:
    """Build the request to send upstream from a received one (already split by the core).

    End-to-end fields go on (plus nominated ones under ``ignore``), ``Expect``
    is answered by the proxy itself, then ``Via`` and the forwarding fields are
    added. Framing is the proxy's own: ``Content-Length`` when the client gave
    one, else chunked when the client's body was chunked (RFC 9112 §7.1).
    ``TE: trailers`` goes upstream only when the client sent it: TE is
    hop-by-hop (RFC 9110 §10.1.4), so the proxy regenerates it, and asks only
    for what its client can take. *has_body* saves recomputing
    :func:`request_has_body` when the caller knows it.

    Raises:
        NominationRejected: see :func:`apply_nominations`.
    """
    options = request.connection.options
    kept = (apply_nominations(request, policy, client_ip)
            if options and not options.isdisjoint(PROTECTED_FIELDS) else _NOTHING)
    trust = policy.trust_forwarded
    drop_host = host is not None or not policy.preserve_host
    drop = _DROP[trust, drop_host]
    fields = [f for f in request.headers.fields if f[0] not in drop]
    in_host = request.headers.get(b"host")
    has_host = not drop_host and in_host is not None
    if kept:
        fields.extend(f for f in kept if f[0] not in drop)  # untrusted forwarding stays out
        has_host = not drop_host and (has_host or any(f[0] == b"host" for f in kept))
    if not has_host:
        fields.insert(0, (b"host", b"Host", host if host is not None else upstream_authority))
    fields.append((b"via", b"Via", _via_entry(request.http_version, policy.via)))
    style = policy.forwarded
    if style is ForwardedStyle.XFF:
        ip = client_ip.encode("latin-1")
        if not trust:
            # Every client-sent forwarding field was dropped above: just add ours.
            fields.append((b"x-forwarded-for", b"X-Forwarded-For", ip))
            fields.append(_xfp(scheme))
            if in_host is not None:
                fields.append((b"x-forwarded-host", b"X-Forwarded-Host", in_host))
        else:
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
    conn_fields: list[tuple[bytes, bytes]] = []
    if has_body is None:
        has_body = request_has_body(request)
    if has_body and not any(f[0] == b"content-length" for f in fields):
        conn_fields.append((b"Transfer-Encoding", b"chunked"))
    if request.connection.fields:
        te = request.connection.fields.get_list(b"te")
        if any(t.lower() == b"trailers" for t in te):
            conn_fields.append((b"TE", b"trailers"))
    conn = ConnectionInfo((), conn_fields) if conn_fields else NO_CONNECTION_INFO
    return Request(
        request.method,
        target if target is not None else request.target,
        Headers._trusted(fields),
        conn,
        b"1.1",
    )


def outbound_response(response: Response, policy: HeaderPolicy) -> Response:
    """Build the response to send the client from the upstream's (already split).

    Everything connection-specific is gone with ``response.connection``; the
    client side's core writes its own ``Connection`` and framing. ``Via``
    records the upstream's protocol version (RFC 9110 §7.6.3).
    """
    fields = list(response.headers.fields)
    fields.append((b"via", b"Via", _via_entry(response.http_version, policy.via)))
    return Response(response.status_code, Headers._trusted(fields), response.reason)


def outbound_informational(
    response: InformationalResponse, policy: HeaderPolicy
) -> InformationalResponse:
    """A 1xx response to relay to the client, with our ``Via`` (RFC 9110 §7.6.3, §15.2)."""
    fields = list(response.headers.fields)
    fields.append((b"via", b"Via", _via_entry(response.http_version, policy.via)))
    return InformationalResponse(response.status_code, Headers._trusted(fields),
                                 response.reason)


#: Trailer fields never forwarded: connection-specific ones (RFC 9110 §7.6.1,
#: which trailers are not exempt from), and framing and routing fields, which
#: RFC 9110 §6.5.1 forbids in trailers; a recipient that wrongly merged them
#: into the header section could be made to re-frame or re-route the message.
_TRAILER_DROP: Final = HOP_BY_HOP_FIELDS | {b"content-length", b"host"}


def forward_trailers(trailers: Headers, nominated: frozenset[bytes]) -> Headers:
    """The trailer fields to pass on: minus hop-by-hop ones and those *nominated*.

    *nominated* are the ``Connection`` options of the message's head: a field
    named there is connection-specific wherever it appears in the message.
    """
    fields = trailers.fields
    if not fields:
        return trailers
    kept = [f for f in fields if f[0] not in _TRAILER_DROP and f[0] not in nominated]
    return trailers if len(kept) == len(fields) else Headers._trusted(kept)
