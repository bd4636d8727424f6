"""What a head we send says: its start line, its fields checked, the bytes (RFC 9112 §2-§5).

The writer never trusts the caller for what the connection owns: end-to-end
fields are checked to be end-to-end (RFC 9110 §7.6.1), the ``Connection`` line
comes from :meth:`ConnectionInfo.lines`, the framing line from
:func:`onehop.core.framing.framing_to_send` and the keep-or-close decision from
:func:`onehop.core.persistence.persists_after_sending`; this module checks the
rest and joins them (:func:`onehop.core.writer.write_head`). It decides nothing
about state: :mod:`onehop.core.connection` says when a message may be sent.
"""

from __future__ import annotations

import re
from typing import Final

from onehop.core.events import InformationalResponse, Request, Response
from onehop.core.framing import Framing, framing_to_send
from onehop.core.headers import (
    NO_CONNECTION_INFO,
    ConnectionInfo,
    Headers,
    WireFields,
    reject_hop_by_hop,
)
from onehop.core.persistence import persists_after_sending
from onehop.core.syntax import TOKEN_RE
from onehop.core.target import check_request_target
from onehop.core.writer import BodyWriter, write_head
from onehop.errors import InvalidMessageToSend, ProtocolError

_TUNNEL: Final = Framing.TUNNEL  # (a global load: an Enum attribute costs ~900 instructions)
#: Methods that need no token check when sent (a set lookup instead of a regex).
_COMMON_METHODS: Final = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE"}
)
_TARGET_RE: Final = re.compile(rb"[\x21-\x7e]+")
_REASON_RE: Final = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_REASONS: Final = {
    100: b"Continue", 101: b"Switching Protocols", 103: b"Early Hints", 200: b"OK",
    201: b"Created", 202: b"Accepted", 204: b"No Content", 206: b"Partial Content",
    301: b"Moved Permanently", 302: b"Found", 303: b"See Other", 304: b"Not Modified",
    307: b"Temporary Redirect", 308: b"Permanent Redirect", 400: b"Bad Request",
    401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
    408: b"Request Timeout", 411: b"Length Required", 413: b"Content Too Large",
    414: b"URI Too Long", 417: b"Expectation Failed", 426: b"Upgrade Required",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 501: b"Not Implemented", 502: b"Bad Gateway",
    503: b"Service Unavailable", 504: b"Gateway Timeout", 505: b"HTTP Version Not Supported",
}
#: Tokens a 1xx leaves out of its Connection line (it never ends the connection,
#: RFC 9110 §15.2), and those a tunnel's 2xx leaves out (no HTTP follows it).
_NOT_ON_1XX: Final = frozenset({b"close"})
_NOT_ON_TUNNEL: Final = frozenset({b"close", b"keep-alive"})
#: The status line for each customary reason-phrase, built once.
_STATUS_LINES: Final = {code: b"HTTP/1.1 %d %s" % (code, text) for code, text in _REASONS.items()}


def reason_phrase(status: int) -> bytes:
    """The customary reason-phrase for *status* (RFC 9110 §15), or empty."""
    return _REASONS.get(status, b"")


def check_request_line(method: bytes, target: bytes, http_version: bytes) -> None:
    """Check the parts of a request-line we are asked to send (RFC 9112 §3).

    The method is a token, the target visible ASCII in the form the method
    takes (RFC 9112 §3.2), and the version one we speak.

    Raises:
        InvalidMessageToSend: naming the part.
    """
    if method not in _COMMON_METHODS and not TOKEN_RE.fullmatch(method):
        raise InvalidMessageToSend(f"invalid method {method!r}")
    if not _TARGET_RE.fullmatch(target):
        raise InvalidMessageToSend(f"invalid request-target {target!r}")
    if http_version != b"1.1" and http_version != b"1.0":
        raise InvalidMessageToSend(f"cannot send HTTP/{http_version.decode('latin-1')}")
    try:
        check_request_target(method, target)
    except ProtocolError as exc:
        raise InvalidMessageToSend(exc.msg) from None


def status_line(status: int, reason: bytes) -> bytes:
    """The status-line for *status* and *reason* (RFC 9112 §4).

    No phrase, or the customary one (as a relayed answer usually carries),
    takes the prebuilt line; any other phrase is checked and kept as given.

    Raises:
        InvalidMessageToSend: the phrase holds a CR, LF or another control.
    """
    if not reason or reason == _REASONS.get(status):
        line = _STATUS_LINES.get(status)
        if line is not None:
            return line
    if not _REASON_RE.fullmatch(reason):
        raise InvalidMessageToSend(f"invalid reason-phrase {reason!r}")
    return b"HTTP/1.1 %d %s" % (status, reason)


def fields_to_send(headers: Headers, conn: ConnectionInfo, needs_host: bool) -> WireFields:
    """Check the fields of a message we send; return the headers' serialized form.

    RFC 9110 §7.6.1: connection-specific fields travel in *conn*, never among
    the end-to-end *headers*, and a field that *conn*'s options name is
    connection-specific too; the options must be tokens (§5.6.2). An HTTP/1.1
    request (*needs_host*) carries Host (RFC 9112 §3.2).

    Raises:
        HopByHopInHeaders, InvalidMessageToSend.
    """
    wire = headers.wire()
    nominated = conn.options
    if nominated:  # (empty for the shared NO_CONNECTION_INFO)
        if not nominated.isdisjoint(wire.names):
            reject_hop_by_hop(headers.fields, nominated)
        for option in nominated:
            if not TOKEN_RE.fullmatch(option):
                raise InvalidMessageToSend(f"connection option {option!r} is not a token")
    if needs_host and not wire.has_host:
        raise InvalidMessageToSend("an HTTP/1.1 request needs a Host field (RFC 9112 §3.2)")
    return wire


def request_to_send(event: Request, persisting: bool) -> tuple[bytes, BodyWriter, bool]:
    """Check a request we send and write its head (RFC 9112 §3, §6, §9).

    *persisting*: the connection may still persist. Returns the head, the
    writer for its content, and whether the connection persists after it.
    Checks run in a fixed order, so the first fault of a request is the one
    named: request-line, fields, Host, framing, Content-Length.

    Raises:
        InvalidMessageToSend, HopByHopInHeaders, FramingMismatch.
    """
    method, target, version = event.method, event.target, event.http_version
    check_request_line(method, target, version)
    conn = event.connection
    wire = fields_to_send(event.headers, conn, version == b"1.1")
    framing, framing_line = framing_to_send(
        wire.lengths, conn.fields.fields, None, method, version)
    body = BodyWriter.to_send(framing, wire, False)
    persist = persists_after_sending(persisting, conn.options, framing)
    if conn is NO_CONNECTION_INFO and persist and version == b"1.1" and wire.block and (
            not framing_line):
        # (The commonest case: nothing for write_head to add between the parts.)
        head = b"%s %s HTTP/1.1\r\n%s\r\n\r\n" % (method, target, wire.block)
    else:
        head = write_head(b"%s %s HTTP/%s" % (method, target, version), wire.block,
                          conn.lines(persist, version == b"1.0"), framing_line)
    return head, body, persist


def response_to_send(
    event: Response, request: Request | None, persisting: bool
) -> tuple[bytes, Framing, bool, WireFields]:
    """Check a final response we send and write its head (RFC 9112 §4, §6, §9).

    *request* is the one it answers (None: it answers none, like a 408).
    Returns the head, its framing, whether the connection persists after it,
    and the fields' serialized form (for :meth:`BodyWriter.to_send`, which
    checks the Content-Length last). A 2xx to CONNECT opens a tunnel: no
    persistence tokens in its ``Connection`` line.

    Raises:
        InvalidMessageToSend, HopByHopInHeaders, FramingMismatch.
    """
    status = event.status_code
    if not 200 <= status <= 999:
        raise InvalidMessageToSend(f"{status} is not a final status")
    conn = event.connection
    wire = fields_to_send(event.headers, conn, False)
    # Answering no request (a 408, a 400 for bytes that were no request): as to HTTP/1.0.
    method, version = (b"GET", b"1.0") if request is None else (
        request.method, request.http_version)
    framing, framing_line = framing_to_send(
        wire.lengths, conn.fields.fields, status, method, version)
    persist = persists_after_sending(persisting, conn.options, framing, request is None)
    if framing is _TUNNEL:
        lines = conn.compose(persist, version == b"1.0", _NOT_ON_TUNNEL)
    else:
        lines = conn.lines(persist, version == b"1.0")
    head = write_head(status_line(status, event.reason), wire.block, lines, framing_line)
    return head, framing, persist, wire


def informational_head(event: InformationalResponse) -> bytes:
    """The head of a 1xx response whose fields were checked (:func:`fields_to_send`).

    RFC 9110 §15.2: a 1xx never ends the connection, so its ``Connection`` line
    has no ``close``.

    Raises:
        InvalidMessageToSend: an invalid reason-phrase.
    """
    lines = event.connection.compose(True, False, _NOT_ON_1XX)
    return write_head(status_line(event.status_code, event.reason),
                      event.headers.wire().block, lines, b"")
