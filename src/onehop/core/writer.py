"""Join heads and frame bodies (RFC 9112 §2-§7).

The writer never trusts the caller for framing: the head's framing line comes
from :func:`onehop.core.framing.framing_to_send`, and :class:`BodyWriter`
refuses content that does not fit it.
"""

from __future__ import annotations

from typing import Final

from onehop.core.framing import Framing, length_to_send
from onehop.core.headers import FIELD_LINE, RAW_AND_VALUE, Field, WireFields
from onehop.errors import FramingMismatch

# Module-level aliases: a global load is cheaper than an Enum attribute (~900 instructions).
_NO_BODY: Final = Framing.NO_BODY
_LENGTH: Final = Framing.LENGTH
_CHUNKED: Final = Framing.CHUNKED
_UNTIL_CLOSE: Final = Framing.UNTIL_CLOSE


def write_head(start_line: bytes, block: bytes, conn_block: bytes, framing_line: bytes) -> bytes:
    """Return a whole head: start line, the end-to-end field lines (*block*, as
    :class:`~onehop.core.headers.WireFields` joins them), the connection-specific
    lines (*conn_block*, from :meth:`~onehop.core.headers.ConnectionInfo.lines`),
    the framing line, and the empty line (RFC 9112 §2.1).
    """
    if conn_block:
        block = b"%s\r\n%s" % (block, conn_block) if block else conn_block
    if not block:
        return b"%s\r\n%s\r\n\r\n" % (start_line, framing_line) if framing_line else (
            start_line + b"\r\n\r\n")
    if framing_line:
        return b"%s\r\n%s\r\n%s\r\n\r\n" % (start_line, block, framing_line)
    return b"%s\r\n%s\r\n\r\n" % (start_line, block)


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
    def to_send(cls, framing: Framing, wire: WireFields, discard: bool) -> BodyWriter:
        """The writer for a message we send with *framing* (from
        :func:`~onehop.core.framing.framing_to_send`) and the end-to-end fields
        *wire*; *discard*: it answers HEAD (see ``discard``).

        Raises:
            FramingMismatch: the Content-Length values are malformed or disagree.
        """
        if framing is _LENGTH:
            return cls(framing, length_to_send(wire.length, wire.lengths))
        if discard:
            return cls(framing, discard=True)
        # A shared writer when it keeps no state (all but LENGTH and UNTIL_CLOSE).
        if framing is _NO_BODY:
            return NO_BODY_WRITER
        if framing is _CHUNKED:
            return CHUNKED_WRITER
        return cls(framing)

    def data(self, data: bytes) -> bytes:
        """Return the wire bytes for *data*.

        Raises:
            FramingMismatch: more content than Content-Length, or content where
                none is allowed (HEAD, 204, 304, 1xx, a request without length).
        """
        framing = self.framing
        if framing is _CHUNKED:
            if not data:
                return b""
            return b"%x\r\n%s\r\n" % (len(data), data)
        if framing is _LENGTH:
            if len(data) > self.remaining:
                raise FramingMismatch(
                    f"{len(data)} bytes exceed the {self.remaining} left by Content-Length"
                )
            self.remaining -= len(data)
            return data
        if framing is _UNTIL_CLOSE:
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
        if self.framing is _CHUNKED:
            if not trailers:
                return b"0\r\n\r\n"
            lines = b"\r\n".join(map(FIELD_LINE, map(RAW_AND_VALUE, trailers)))
            return b"0\r\n%s\r\n\r\n" % lines
        if trailers:
            raise FramingMismatch("trailers need chunked framing")
        if self.framing is _LENGTH and self.remaining:
            raise FramingMismatch(f"message ended {self.remaining} bytes short of Content-Length")
        return b""


#: Shared writers for framings whose writer keeps no state (only LENGTH counts down).
NO_BODY_WRITER: Final = BodyWriter(Framing.NO_BODY)
CHUNKED_WRITER: Final = BodyWriter(Framing.CHUNKED)
