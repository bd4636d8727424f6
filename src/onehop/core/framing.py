"""How long a message body is (RFC 9112 §6): the rules for reading and for sending.

:func:`request_framing` and :func:`response_framing` decide a received message's
framing, :func:`framing_to_send` and :func:`length_to_send` the framing of one we
send; nothing else in the package decides it.

The rules here decide request smuggling's fate, so each is strict: a
Transfer-Encoding other than exactly ``chunked``, TE together with
Content-Length, or disagreeing Content-Length values are errors, never guesses.
"""

from __future__ import annotations

import enum
from typing import Final

from onehop.core.native import INTERPRETED
from onehop.errors import (
    ChunkedNotLast,
    ConflictingFraming,
    FramingMismatch,
    InvalidContentLength,
    ProtocolError,
    UnsupportedTransferCoding,
)


class Framing(enum.Enum):
    """How the end of a body is found."""

    NO_BODY = "no-body"
    LENGTH = "content-length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until-close"
    TUNNEL = "tunnel"


#: Largest Content-Length accepted: 19 decimal digits fit in a signed 64-bit int.
MAX_CONTENT_LENGTH_DIGITS: Final = 18


def plain_content_length(values: list[bytes]) -> int | None:
    """The length one plain Content-Length line (1*DIGIT, not too long) gives; None for
    anything else, which :func:`parse_content_length` then decides (and names the fault)."""
    if len(values) == 1:
        value = values[0]
        if value.isdigit() and len(value) <= MAX_CONTENT_LENGTH_DIGITS:
            return int(value)  # (what parse_content_length returns for it)
    return None


def parse_content_length(values: list[bytes]) -> int:
    """Return the one length that all Content-Length lines agree on.

    RFC 9112 §6.3 (5): a list of identical valid values counts as that value;
    anything else is unrecoverable framing.

    Raises:
        InvalidContentLength: a value is not 1*DIGIT, too long, or values differ.
    """
    length: int | None = None
    for value in values:
        for member in value.split(b","):
            member = member.strip(b" \t")
            if not member.isdigit() or not member.isascii():
                raise InvalidContentLength(f"malformed Content-Length {member[:40]!r}")
            if len(member) > MAX_CONTENT_LENGTH_DIGITS:
                raise InvalidContentLength("Content-Length too large")
            n = int(member)
            if length is not None and n != length:
                raise InvalidContentLength("differing Content-Length values")
            length = n
    if length is None:
        raise InvalidContentLength("empty Content-Length")
    return length


def is_chunked(values: list[bytes]) -> bool:
    """Check a Transfer-Encoding field and return whether the body is chunked.

    We implement only ``chunked``: any other coding gets 501 (RFC 9112 §6.1,
    "SHOULD respond with 501"), chunked twice or not last is a framing error.

    Raises:
        UnsupportedTransferCoding, ChunkedNotLast.
    """
    codings = [m.strip(b" \t").lower() for v in values for m in v.split(b",")]
    codings = [c for c in codings if c]
    if not codings:
        raise ChunkedNotLast("empty Transfer-Encoding")
    for c in codings:
        if c != b"chunked":
            name = c.split(b";")[0].decode("latin-1")
            raise UnsupportedTransferCoding(f"unsupported transfer coding {name!r}")
    if len(codings) > 1:
        raise ChunkedNotLast("chunked applied more than once")
    return True


def message_framing(
    special: dict[bytes, list[bytes]] | None,
    http_version: bytes,
    *,
    request_method: bytes | None,
    status_code: int | None,
) -> tuple[Framing, int]:
    """Decide a received message's framing (RFC 9112 §6.3).

    *special* maps lower-case names of the fields that matter here
    (``transfer-encoding``, ``content-length``) to their values, as built by
    :func:`onehop.core.headers.scan_fields` (None when the message had none).
    *request_method* is the method of the request (for a response, the request
    it answers); *status_code* is None for a request. Returns (framing, length);
    length is meaningful for ``LENGTH`` only.

    Raises:
        ConflictingFraming, InvalidContentLength, UnsupportedTransferCoding, ChunkedNotLast.
    """
    if status_code is None:
        return request_framing(special, http_version)
    return response_framing(special, http_version, request_method or b"GET", status_code)


def request_framing(
    special: dict[bytes, list[bytes]] | None, http_version: bytes
) -> tuple[Framing, int]:
    """:func:`message_framing` for a received request: the fields decide alone.

    The usual cases come first, decided without the step-by-step walk of
    :func:`fields_framing`: no framing field (RFC 9112 §6.3 (6): no content) and
    one plain Content-Length. Everything else takes the walk, so the answer and
    the error are the same either way (``tests/core/test_framing.py`` checks it).

    Raises:
        ConflictingFraming, InvalidContentLength, UnsupportedTransferCoding, ChunkedNotLast.
    """
    if special is None:
        return _NO_CONTENT
    if b"transfer-encoding" not in special:
        cl = special.get(b"content-length")
        if cl is None:
            return _NO_CONTENT
        if not INTERPRETED:
            length = plain_content_length(cl)
            if length is not None:
                return _LENGTH, length
        elif len(cl) == 1:  # (plain_content_length without its frame: see core.native)
            value = cl[0]
            if value.isdigit() and len(value) <= MAX_CONTENT_LENGTH_DIGITS:
                return _LENGTH, int(value)
    return fields_framing(special, http_version, is_response=False)


def response_framing(
    special: dict[bytes, list[bytes]] | None,
    http_version: bytes,
    request_method: bytes,
    status_code: int,
) -> tuple[Framing, int]:
    """:func:`message_framing` for a received response to *request_method*.

    RFC 9112 §6.3 (1): a response to HEAD, a 1xx, 204 or 304 has no content,
    whatever its fields say; (2) a 2xx to CONNECT turns the connection into a
    tunnel. Then the fields decide, the usual cases first (one plain
    Content-Length; ``Transfer-Encoding: chunked`` alone in HTTP/1.1), the rest
    by the step-by-step walk of :func:`fields_framing`, which gives the same
    answer and the same error (``tests/core/test_framing.py`` checks it).

    Raises:
        ConflictingFraming, InvalidContentLength, UnsupportedTransferCoding, ChunkedNotLast.
    """
    if request_method == b"HEAD" or status_code < 200 or status_code == 204 or (
            status_code == 304):
        return _NO_CONTENT
    if request_method == b"CONNECT" and status_code < 300:
        return _TUNNEL
    if special is None:
        return _UNTIL_CLOSE
    te = special.get(b"transfer-encoding")
    cl = special.get(b"content-length")
    if te is None:
        if cl is None:
            return _UNTIL_CLOSE
        if not INTERPRETED:
            length = plain_content_length(cl)
            if length is not None:
                return _LENGTH, length
        elif len(cl) == 1:  # (plain_content_length without its frame: see core.native)
            value = cl[0]
            if value.isdigit() and len(value) <= MAX_CONTENT_LENGTH_DIGITS:
                return _LENGTH, int(value)
    elif cl is None and te == _JUST_CHUNKED and http_version == b"1.1":
        return _CHUNKED
    return fields_framing(special, http_version, is_response=True)


def fields_framing(
    special: dict[bytes, list[bytes]], http_version: bytes, *, is_response: bool
) -> tuple[Framing, int]:
    """RFC 9112 §6.3 (3)-(7), step by step: what the framing fields of a message say.

    The reference walk that :func:`request_framing` and :func:`response_framing`
    short-cut for their usual cases.

    Raises:
        ConflictingFraming, InvalidContentLength, UnsupportedTransferCoding, ChunkedNotLast.
    """
    te = special.get(b"transfer-encoding")
    cl = special.get(b"content-length")
    if te is not None:
        if cl is not None:
            # RFC 9112 §6.3 (3): "ought to be handled as an error"; smuggling's favourite.
            raise ConflictingFraming("both Transfer-Encoding and Content-Length")
        if http_version == b"1.0":
            raise ConflictingFraming("Transfer-Encoding in an HTTP/1.0 message")
        is_chunked(te)  # (4) chunked last, and the only coding we implement
        return _CHUNKED
    if cl is not None:
        return _LENGTH, parse_content_length(cl)  # (5)
    if is_response:
        return _UNTIL_CLOSE  # (7) a response without either runs to close
    return _NO_CONTENT  # (6) a request without either has no content


def framing_to_send(
    lengths: list[bytes],
    conn_fields: list[tuple[bytes, bytes, bytes]],
    status_code: int | None,
    request_method: bytes,
    http_version: bytes,
) -> tuple[Framing, bytes]:
    """Decide how a message we send is framed; return (framing, framing line).

    The writer owns framing: the caller gives the Content-Length values among
    the end-to-end fields (*lengths*) and may ask for chunked with a
    ``Transfer-Encoding`` among the connection-specific ones (*conn_fields*);
    the framing line returned (``Transfer-Encoding: chunked`` or empty) is the
    only one written. *status_code* is None for a request; *request_method*
    and *http_version* are those of the request (for a response, the one it
    answers: ``GET`` and ``1.0`` when it answers none). The length itself is
    :func:`length_to_send`'s to give.

    - RFC 9112 §6.2: a sender MUST NOT send Content-Length with Transfer-Encoding;
      §6.1: chunked is HTTP/1.1 only, so an HTTP/1.0 peer gets a body that runs to
      close (§6.3 (7)) and an HTTP/1.0 request cannot be chunked.
    - RFC 9110 §9.3.6: a 2xx to CONNECT has no framing fields (it opens a tunnel);
      §6.4.1: a response to HEAD, a 204 or a 304 has no content; §8.6: a 204 has
      no Content-Length.
    - A response with neither, to HTTP/1.1, is chunked; a request with neither
      has no content (§6.3 (6)).

    Raises:
        FramingMismatch: the fields ask for framing the rules forbid.
    """
    chunked = False
    if conn_fields:  # (empty for the shared NO_CONNECTION_INFO)
        te = [f[2] for f in conn_fields if f[0] == b"transfer-encoding"]
        if te:
            try:
                chunked = is_chunked(te)
            except ProtocolError as exc:
                raise FramingMismatch(f"cannot send Transfer-Encoding: {exc.msg}") from None
            if lengths:
                raise FramingMismatch("both Content-Length and chunked requested")
    if status_code is None:
        if chunked:
            if http_version == b"1.0":
                raise FramingMismatch("HTTP/1.0 cannot carry chunked content")
            return _CHUNKED_LINE
        return _LENGTH_LINE if lengths else _NO_CONTENT_LINE
    if request_method == b"CONNECT" and status_code < 300:
        if lengths or chunked:
            raise FramingMismatch("a 2xx response to CONNECT has no framing fields "
                                  "(RFC 9110 §9.3.6)")
        return _TUNNEL_LINE
    if status_code == 204 or status_code == 304 or request_method == b"HEAD":
        if lengths and status_code == 204:
            raise FramingMismatch("a 204 response MUST NOT carry Content-Length "
                                  "(RFC 9110 §8.6)")
        return _NO_CONTENT_LINE
    if lengths:
        return _LENGTH_LINE
    if http_version != b"1.0":
        return _CHUNKED_LINE
    return _UNTIL_CLOSE_LINE  # never chunked to an HTTP/1.0 peer


def length_to_send(length: int | None, lengths: list[bytes]) -> int:
    """The content length the Content-Length values we send announce.

    *length* is :func:`plain_content_length` of *lengths*, when known (the
    sender's fields keep it): the usual case, one plain value.

    Raises:
        FramingMismatch: the values are malformed or disagree (RFC 9112 §6.3 (5)).
    """
    if length is not None:
        return length
    try:
        return parse_content_length(lengths)
    except ProtocolError as exc:
        raise FramingMismatch(f"cannot send Content-Length: {exc.msg}") from None


# Module-level aliases: reading an Enum member as a class attribute costs ~900
# instructions on CPython 3.11, a global ~20. And shared results (no tuple per message).
_LENGTH: Final = Framing.LENGTH
_NO_CONTENT: Final = (Framing.NO_BODY, 0)
_UNTIL_CLOSE: Final = (Framing.UNTIL_CLOSE, 0)
_CHUNKED: Final = (Framing.CHUNKED, 0)
_TUNNEL: Final = (Framing.TUNNEL, 0)
_JUST_CHUNKED: Final = [b"chunked"]
_NO_CONTENT_LINE: Final = (Framing.NO_BODY, b"")
_LENGTH_LINE: Final = (Framing.LENGTH, b"")
_CHUNKED_LINE: Final = (Framing.CHUNKED, b"Transfer-Encoding: chunked")
_UNTIL_CLOSE_LINE: Final = (Framing.UNTIL_CLOSE, b"")
_TUNNEL_LINE: Final = (Framing.TUNNEL, b"")
