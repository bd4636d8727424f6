"""How long a message body is (RFC 9112 §6): one function for reader and writer.

The rules here decide request smuggling's fate, so each is strict: a
Transfer-Encoding other than exactly ``chunked``, TE together with
Content-Length, or disagreeing Content-Length values are errors, never guesses.
"""

from __future__ import annotations

import enum
from typing import Final

from onehop.errors import (
    ChunkedNotLast,
    ConflictingFraming,
    InvalidContentLength,
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
    if status_code is not None:
        # (1) HEAD, 1xx, 204, 304 never have content; (2) CONNECT 2xx switches to a tunnel.
        if request_method == b"HEAD" or status_code < 200 or status_code in (204, 304):
            return Framing.NO_BODY, 0
        if request_method == b"CONNECT" and status_code < 300:
            return Framing.TUNNEL, 0
    te = cl = None
    if special is not None:
        te = special.get(b"transfer-encoding")
        cl = special.get(b"content-length")
    if te is not None:
        if cl is not None:
            # RFC 9112 §6.3 (3): "ought to be handled as an error"; smuggling's favourite.
            raise ConflictingFraming("both Transfer-Encoding and Content-Length")
        if http_version == b"1.0":
            raise ConflictingFraming("Transfer-Encoding in an HTTP/1.0 message")
        is_chunked(te)
        return Framing.CHUNKED, 0
    if cl is not None:
        return Framing.LENGTH, parse_content_length(cl)
    if status_code is None:
        return Framing.NO_BODY, 0  # (6) a request without either has no content
    return Framing.UNTIL_CLOSE, 0  # (7) a response without either runs to close
