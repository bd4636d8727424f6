"""What crosses between an HTTP/2 field block and onehop's message events.

HTTP/2 has no connection-specific header fields: the framing layer carries
what ``Connection``, ``Keep-Alive``, ``Transfer-Encoding`` and ``Upgrade`` do in
HTTP/1.1 (RFC 9113 §8.2.2). Two functions keep that rule, one per direction,
and every HTTP/2 stream goes through them (:mod:`onehop._aio.h2stream`):

- :func:`request_from_fields` turns a request's field block into the
  :class:`~onehop.core.Request` handlers already take. A request carrying a
  connection-specific field, or ``TE`` other than ``trailers``, is malformed:
  :class:`MalformedFields` with ``reset`` set, a stream error of type
  PROTOCOL_ERROR that never reaches a handler (RFC 9113 §8.1.1, §8.2.2). Other
  malformed requests get a 400 on the stream.
- :func:`outbound_fields` turns a response (or 1xx, or trailer) head into the
  field block to send: ``Connection``, every field it nominates, ``Keep-Alive``,
  ``Proxy-Connection``, ``Transfer-Encoding``, ``Upgrade`` and ``TE`` go; each
  name removed is logged once at debug level, and never is an error for the app
  or the upstream that sent it (Safari refuses a response that carries one).

Sans-I/O and standard library only: the ``h2`` library frames the blocks.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from onehop.core import ConnectionInfo, Headers, Request
from onehop.core.headers import HOP_BY_HOP_FIELDS, NO_CONNECTION_INFO
from onehop.core.syntax import TCHAR

#: The client connection preface (RFC 9113 §3.4): the first bytes of every HTTP/2
#: connection, chosen so that an HTTP/1.x server fails on it rather than answering.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

log: Final = logging.getLogger("onehop.http2")

#: Fields that are connection-specific in HTTP/2 whatever their value (RFC 9113 §8.2.2);
#: ``TE`` is the one exception, allowed in a request with the value ``trailers``.
CONNECTION_SPECIFIC: Final = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"})

#: Fields HTTP/1 treats as hop-by-hop (RFC 9110 §7.6.1, and so the core files them in a
#: message's connection part) that HTTP/2 carries as ordinary fields: ``Trailer``
#: announces trailer fields, ``Proxy-Authenticate`` is a proxy's challenge. They go on
#: unless ``Connection`` nominated them.
_HTTP2_KEEPS: Final = frozenset({b"trailer", b"proxy-authenticate"})

#: Fields the core files in a message's connection part that HTTP/2 allows in a request
#: (``Trailer``; ``Proxy-Authorization``, for a proxy): filed there too, so a handler
#: sees an HTTP/2 request in the shape of an HTTP/1 one and a proxy strips them.
_HOP_BY_HOP: Final = HOP_BY_HOP_FIELDS - CONNECTION_SPECIFIC - {b"te"}

#: A field name as HTTP/2 allows it: a token without upper-case letters (RFC 9113 §8.2.1,
#: "field names MUST be converted to lowercase"; RFC 9110 §5.1).
_NAME_RE: Final = re.compile(rb"[" + TCHAR.replace(b"A-Z", b"") + rb"]+")
#: A field value: no CR, LF, NUL or other control but HTAB (RFC 9113 §8.2.1, RFC 9110
#: §5.5), and no whitespace at either end.
_VALUE_RE: Final = re.compile(
    rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")

#: The connection part of a request whose content has no declared length: the core's
#: picture of a body delimited by its end (what HTTP/1.1 calls chunked), so a handler
#: that forwards it over HTTP/1.1 frames it chunked (the proxy does, RFC 9112 §7.1).
UNSIZED_BODY: Final = ConnectionInfo.from_parsed(
    frozenset(), [(b"transfer-encoding", b"Transfer-Encoding", b"chunked")])
_TE_TRAILERS: Final = (b"te", b"te", b"trailers")
#: The one ``:protocol`` of an extended CONNECT served (RFC 8441 §5); others get 501
#: (as RFC 9220 §3 says for HTTP/3: "SHOULD respond ... with a 501 (Not Implemented)").
WEBSOCKET: Final = b"websocket"
_UPGRADE: Final = frozenset({b"upgrade"})
_UPGRADE_WEBSOCKET: Final = (b"upgrade", b"upgrade", WEBSOCKET)
_CHUNKED: Final = UNSIZED_BODY.fields.fields[0]

#: Names whose removal was logged already (one debug line per name per process).
_logged: set[bytes] = set()
_STATUS: Final = {code: b"%d" % code for code in range(100, 600)}


class MalformedFields(Exception):
    """A request (or trailer) field block HTTP/2 calls malformed (RFC 9113 §8.1.1).

    ``reset``: answer with a stream error of type PROTOCOL_ERROR only (a
    connection-specific field, RFC 9113 §8.2.2); else a 400 goes first, as
    §8.1.1 allows ("a server MAY send an HTTP response prior to closing or
    resetting the stream").
    """

    def __init__(self, reason: str, *, reset: bool = False) -> None:
        super().__init__(reason)
        self.reset = reset


def request_from_fields(fields: list[tuple[bytes, bytes]], *, ends_stream: bool,
                        extended_connect: bool = False) -> tuple[Request, bytes | None]:
    """The :class:`~onehop.core.Request` a handler gets for an HTTP/2 request's field block,
    and the ``:protocol`` of an extended CONNECT (RFC 8441) or None.

    *extended_connect*: we sent SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3), so a
    CONNECT may carry ``:protocol`` (with ``:scheme``, ``:path`` and ``:authority``,
    §4); without it a ``:protocol`` is a stream error. An extended CONNECT for
    ``websocket`` becomes the ``GET`` with ``Upgrade: websocket`` (in the connection
    part, ``upgrade`` its option) that RFC 6455 would have sent, version ``b"2"``, so
    the server's and the proxy's WebSocket paths take it; any other protocol stays a
    ``CONNECT`` to the ``:path``, for the caller to refuse.

    The request's ``http_version`` is ``b"2"`` (the core never parses or writes that
    version; it only labels where the request came from). ``:authority`` becomes
    ``Host`` (RFC 9113 §8.3.1; a ``Host`` that differs is malformed), cookie crumbs
    are joined with ``"; "`` (§8.2.3), and ``TE: trailers``, ``Trailer`` and
    ``Proxy-Authorization`` are filed in the connection part as the core files them.
    A request whose content follows without a ``Content-Length`` (*ends_stream*
    false) carries :data:`UNSIZED_BODY` there.

    Raises:
        MalformedFields: the block is malformed (RFC 9113 §8.1.1, §8.2, §8.3.1);
            ``reset`` when it carries a connection-specific field.
    """
    method = scheme = authority = path = protocol = None
    regular: list[tuple[bytes, bytes, bytes]] = []
    cookies: list[bytes] | None = None
    host: bytes | None = None
    te = False
    has_length = False
    hop: list[tuple[bytes, bytes, bytes]] = []
    name_ok = _NAME_RE.fullmatch
    value_ok = _VALUE_RE.fullmatch
    for name, value in fields:
        if name[:1] == b":":
            if regular or cookies is not None or host is not None or te:
                raise MalformedFields("a pseudo-header field after a regular field "
                                      "(RFC 9113 §8.3)")
            if name == b":method":
                if method is not None:
                    raise MalformedFields("a second :method (RFC 9113 §8.3)")
                method = value
            elif name == b":path":
                if path is not None:
                    raise MalformedFields("a second :path (RFC 9113 §8.3)")
                path = value
            elif name == b":scheme":
                if scheme is not None:
                    raise MalformedFields("a second :scheme (RFC 9113 §8.3)")
                scheme = value
            elif name == b":authority":
                if authority is not None:
                    raise MalformedFields("a second :authority (RFC 9113 §8.3)")
                authority = value
            elif name == b":protocol":
                if not extended_connect:
                    # RFC 8441 §3: not enabled by our SETTINGS, the field is unknown, and a
                    # request with it malformed: a stream error (RFC 9113 §8.1.1, §8.3).
                    raise MalformedFields(":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL "
                                          "(RFC 8441 §3)", reset=True)
                if protocol is not None:
                    raise MalformedFields("a second :protocol (RFC 9113 §8.3)")
                protocol = value
            else:
                raise MalformedFields(f"pseudo-header field {_show(name)} is not one of a "
                                      "request's (RFC 9113 §8.3.1)")
            continue
        if name in CONNECTION_SPECIFIC:
            raise MalformedFields(f"connection-specific field {_show(name)} in an HTTP/2 "
                                  "request (RFC 9113 §8.2.2)", reset=True)
        if name_ok(name) is None:
            raise MalformedFields(f"invalid field name {_show(name)} (RFC 9113 §8.2.1)")
        if value_ok(value) is None:
            raise MalformedFields(f"invalid value in field {_show(name)} (RFC 9113 §8.2.1)")
        if name == b"te":
            if value.lower() != b"trailers":
                raise MalformedFields(f"TE: {_show(value)} in an HTTP/2 request: only "
                                      "'trailers' is allowed (RFC 9113 §8.2.2)", reset=True)
            te = True
        elif name == b"cookie":
            if cookies is None:
                cookies = [value]
                regular.append((b"cookie", b"cookie", b""))  # (the joined value, below)
            else:
                cookies.append(value)
        elif name == b"host":
            if host is not None:
                raise MalformedFields("a second Host field (RFC 9110 §7.2)")
            host = value
        elif name in _HOP_BY_HOP:
            hop.append((name, name, value))
        else:
            if name == b"content-length":
                has_length = True
            regular.append((name, name, value))
    if method is None:
        raise MalformedFields("no :method (RFC 9113 §8.3.1)")
    connect = method == b"CONNECT"
    if protocol is not None and (not connect or not authority):
        raise MalformedFields(":protocol belongs to a CONNECT with :authority, :scheme and "
                              ":path (RFC 8441 §4)")
    tunnel = connect and protocol is None
    if tunnel:
        # RFC 9113 §8.5: ":scheme and :path pseudo-header fields MUST be omitted".
        if scheme is not None or path is not None or not authority:
            raise MalformedFields("CONNECT needs :authority alone (RFC 9113 §8.5)")
        target = authority
    else:
        if scheme is None or not path:
            raise MalformedFields("no :scheme or :path (RFC 9113 §8.3.1)")
        if path[:1] != b"/" and not (path == b"*" and method == b"OPTIONS"):
            raise MalformedFields(f":path {_show(path)} is neither origin-form nor '*' "
                                  "for OPTIONS (RFC 9113 §8.3.1)")
        target = path
    if name_ok(method.lower()) is None:
        raise MalformedFields(f"invalid :method {_show(method)} (RFC 9110 §9.1)")
    if authority is not None:
        if not authority or value_ok(authority) is None or b"@" in authority:
            raise MalformedFields(f"invalid :authority {_show(authority)} (RFC 9113 §8.3.1)")
        if host is not None and host.lower() != authority.lower():
            raise MalformedFields("Host differs from :authority (RFC 9113 §8.3.1)")
        regular.insert(0, (b"host", b"host", authority))
    elif host is not None:
        regular.insert(0, (b"host", b"host", host))
    if cookies is not None:
        at = regular.index((b"cookie", b"cookie", b""))
        regular[at] = (b"cookie", b"cookie", b"; ".join(cookies))
    # (A CONNECT stream's DATA is the tunnel's bytes, not content: RFC 9113 §8.5, and an
    # extended CONNECT's are the protocol's, RFC 8441 §4.)
    unsized = not ends_stream and not has_length and not connect
    if te:
        hop.append(_TE_TRAILERS)
    options: frozenset[bytes] = frozenset()
    if protocol is not None and protocol.lower() == WEBSOCKET:
        # RFC 8441 §5: "This request replaces the GET-based request in [RFC6455]": the
        # handler gets that request, a GET offering Upgrade: websocket; the version b"2"
        # tells it apart (HTTP/2 has no Upgrade of its own: a request with one is reset).
        method = b"GET"
        options = _UPGRADE
        hop.insert(0, _UPGRADE_WEBSOCKET)
    if not hop:
        connection = UNSIZED_BODY if unsized else NO_CONNECTION_INFO
    else:
        connection = ConnectionInfo.from_parsed(options, [_CHUNKED, *hop] if unsized else hop)
    return Request(method, target, Headers.from_parsed(regular), connection, b"2"), protocol


def trailers_from_fields(fields: list[tuple[bytes, bytes]]) -> Headers:
    """A request's trailer section as :class:`~onehop.core.Headers`.

    Raises:
        MalformedFields: a pseudo-header field (RFC 9113 §8.1), a connection-specific
            field (``reset``, §8.2.2) or an invalid name or value (§8.2.1).
    """
    out: list[tuple[bytes, bytes, bytes]] = []
    for name, value in fields:
        if name[:1] == b":":
            raise MalformedFields("a pseudo-header field in trailers (RFC 9113 §8.1)")
        if name in CONNECTION_SPECIFIC or name == b"te":
            raise MalformedFields(f"connection-specific field {_show(name)} in HTTP/2 "
                                  "trailers (RFC 9113 §8.2.2)", reset=True)
        if _NAME_RE.fullmatch(name) is None or _VALUE_RE.fullmatch(value) is None:
            raise MalformedFields(f"invalid trailer field {_show(name)} (RFC 9113 §8.2.1)")
        out.append((name, name, value))
    return Headers.from_parsed(out)


def outbound_fields(headers: Headers, connection: ConnectionInfo = NO_CONNECTION_INFO,
                    status: int | None = None) -> list[tuple[bytes, bytes]]:
    """The field block that sends a head (with ``:status`` when *status* is given) or a
    trailer section over HTTP/2: the end-to-end *headers*, names in lower case.

    The connection part goes: RFC 9113 §8.2.2, "An endpoint MUST NOT generate an
    HTTP/2 message containing connection-specific header fields", which includes
    ``Connection``, every field it nominates, ``Keep-Alive``, ``Proxy-Connection``,
    ``Transfer-Encoding``, ``Upgrade`` and, in a response, ``TE``. Only ``Trailer``
    and ``Proxy-Authenticate``, which HTTP/2 carries as ordinary fields, stay unless
    nominated. Each name removed is logged once per process at debug level
    (``onehop.http2``); nothing here raises: the HTTP/1 message was valid, and its
    HTTP/2 form simply has no such fields.
    """
    out = [(f[0], f[2]) for f in headers.fields]
    if status is not None:
        out.insert(0, (b":status", _STATUS.get(status) or b"%d" % status))
    if connection is NO_CONNECTION_INFO:
        return out
    options = connection.options
    if options and b"connection" not in _logged:
        _note(b"connection")
    for f in connection.fields.fields:
        name = f[0]
        if name in _HTTP2_KEEPS and name not in options:
            out.append((name, f[2]))
        elif name not in _logged:
            _note(name)
    return out


def drop_connection_specific(trailers: Headers) -> Headers:
    """*trailers* without connection-specific fields (RFC 9113 §8.2.2 applies to trailer
    sections as to heads), each name removed logged once, as :func:`outbound_fields`."""
    fields = trailers.fields
    kept = [f for f in fields if f[0] not in CONNECTION_SPECIFIC and f[0] != b"te"]
    if len(kept) == len(fields):
        return trailers
    for f in fields:
        if f not in kept and f[0] not in _logged:
            _note(f[0])
    return Headers.from_parsed(kept)


def _note(name: bytes) -> None:
    _logged.add(name)
    log.debug("HTTP/2: %s removed from a message sent (connection-specific, RFC 9113 "
              "§8.2.2); logged once per field name", name.decode("latin-1"))


def _show(value: bytes) -> str:
    text = value[:64].decode("latin-1")
    return repr(text + ("..." if len(value) > 64 else ""))
