"""Serialize heads and frame bodies (RFC 9112 §2-§7).

The writer never trusts the caller for framing: the head's framing fields are
produced here from the decision in :mod:`onehop.core.connection`, and
:class:`BodyWriter` refuses content that does not fit it.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Final

from onehop.core.framing import Framing
from onehop.core.headers import Field
from onehop.errors import FramingMismatch

#: (raw name, value) of a field triple, and "name: value" of such a pair (C-level map).
RAW_AND_VALUE: Final = itemgetter(1, 2)
FIELD_LINE: Final = b": ".join


def write_head(
    start_line: bytes,
    fields: list[Field],
    conn_fields: list[Field],
    tokens: list[bytes],
    framing_line: bytes,
) -> bytes:
    """Return a whole head: start line, end-to-end fields, connection fields,
    a ``Connection`` line listing *tokens*, the framing line, and the empty line.
    """
    if not conn_fields and not tokens:  # (the usual HTTP/1.1 keep-alive message)
        if not fields:
            return b"%s\r\n%s\r\n\r\n" % (start_line, framing_line) if framing_line else (
                start_line + b"\r\n\r\n")
        block = b"\r\n".join(map(FIELD_LINE, map(RAW_AND_VALUE, fields)))
        if framing_line:
            return b"%s\r\n%s\r\n%s\r\n\r\n" % (start_line, block, framing_line)
        return b"%s\r\n%s\r\n\r\n" % (start_line, block)
    parts = [start_line]
    if fields or conn_fields:
        every = fields + conn_fields if conn_fields else fields
        parts.append(b"\r\n".join(map(FIELD_LINE, map(RAW_AND_VALUE, every))))
    if tokens:
        parts.append(b"Connection: " + b", ".join(tokens))
    if framing_line:
        parts.append(framing_line)
    parts.append(b"\r\n")
    return b"\r\n".join(parts)


class BodyWriter:
    """Frames content for one message and checks it matches the announced framing."""

    __slots__ = ("discard", "framing", "remaining")

    def __init__(self, framing: Framing, length: int = 0, *, discard: bool = False) -> None:
        self.framing = framing
        self.remaining = length
        #: Content is accepted and dropped: a response to HEAD (RFC 9110 §9.3.2,
        #: "The server SHOULD NOT send content"), so an app may reuse its GET handler.
        self.discard = discard

    @classmethod
    def for_framing(cls, framing: Framing, length: int = 0) -> BodyWriter:
        """A writer for *framing*: a shared one when it keeps no state (all but LENGTH)."""
        if framing is Framing.LENGTH:
            return cls(framing, length)
        if framing is Framing.NO_BODY:
            return NO_BODY_WRITER
        if framing is Framing.CHUNKED:
            return CHUNKED_WRITER
        return cls(framing)

    def data(self, data: bytes) -> bytes:
        """Return the wire bytes for *data*.

        Raises:
            FramingMismatch: more content than Content-Length, or content where
                none is allowed (HEAD, 204, 304, 1xx, a request without length).
        """
        framing = self.framing
        if framing is Framing.CHUNKED:
            if not data:
                return b""
            return b"%x\r\n%s\r\n" % (len(data), data)
        if framing is Framing.LENGTH:
            if len(data) > self.remaining:
                raise FramingMismatch(
                    f"{len(data)} bytes exceed the {self.remaining} left by Content-Length"
                )
            self.remaining -= len(data)
            return data
        if framing is Framing.UNTIL_CLOSE:
            return data
        if data and not self.discard:
            raise FramingMismatch("this message cannot have content")
        return b""

    def end(self, trailers: list[Field]) -> bytes:
        """Return the wire bytes that end the message.

        Raises:
            FramingMismatch: content shorter than Content-Length, or trailers
                without chunked framing (only chunked can carry them, RFC 9112 §7.1.2).
        """
        if self.framing is Framing.CHUNKED:
            if not trailers:
                return b"0\r\n\r\n"
            lines = b"\r\n".join(map(FIELD_LINE, map(RAW_AND_VALUE, trailers)))
            return b"0\r\n%s\r\n\r\n" % lines
        if trailers:
            raise FramingMismatch("trailers need chunked framing")
        if self.framing is Framing.LENGTH and self.remaining:
            raise FramingMismatch(f"message ended {self.remaining} bytes short of Content-Length")
        return b""


#: Shared writers for framings whose writer keeps no state (only LENGTH counts down).
NO_BODY_WRITER: Final = BodyWriter(Framing.NO_BODY)
CHUNKED_WRITER: Final = BodyWriter(Framing.CHUNKED)
