"""Serialize heads and frame bodies (RFC 9112 §2-§7).

The writer never trusts the caller for framing: the head's framing fields are
produced here from the decision in :mod:`onehop.core.connection`, and
:class:`BodyWriter` refuses content that does not fit it.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Final

from onehop.core.framing import Framing, plain_content_length
from onehop.core.headers import HOP_BY_HOP_FIELDS, Field, Headers
from onehop.errors import FramingMismatch, HopByHopInHeaders

#: (raw name, value) of a field triple, and "name: value" of such a pair (C-level map).
RAW_AND_VALUE: Final = itemgetter(1, 2)
FIELD_LINE: Final = b": ".join
_NAME: Final = itemgetter(0)
#: Names that may not be sent among the end-to-end ``headers``.
NOT_END_TO_END: Final = HOP_BY_HOP_FIELDS | {b"close"}


class Vetted:
    """What sending one :class:`Headers` needs, worked out once per instance.

    A server sends the same header list on most responses (its head cache
    shares one instance), so the checks and the joined field lines are kept on
    the instance (``Headers._vetted``) rather than redone per message.
    """

    __slots__ = ("block", "has_host", "length", "lengths", "names")

    def __init__(self, fields: list[Field]) -> None:
        names = frozenset(map(_NAME, fields))
        if not NOT_END_TO_END.isdisjoint(names):
            reject_hop_by_hop(fields, frozenset())
        self.names = names
        self.has_host = b"host" in names
        #: The Content-Length values, for the framing decision.
        self.lengths = [f[2] for f in fields if f[0] == b"content-length"] if (
            b"content-length" in names) else []
        #: The one plain Content-Length value as a number; None: the caller parses
        #: ``lengths`` (several values, or one to reject with its reason).
        self.length = plain_content_length(self.lengths)
        #: The field lines, CRLF-joined, without the last CRLF.
        self.block = b"\r\n".join(map(FIELD_LINE, map(RAW_AND_VALUE, fields)))


def vet(headers: Headers) -> Vetted:
    """Check *headers* may be sent as end-to-end fields; return what the writer needs.

    Raises:
        HopByHopInHeaders: a hop-by-hop field (RFC 9110 §7.6.1) among them.
    """
    vetted = headers._vetted
    if vetted is None:
        vetted = headers._vetted = Vetted(headers._fields)
    return vetted


def reject_hop_by_hop(fields: list[Field], nominated: frozenset[bytes]) -> None:
    """Raise for the first field that is hop-by-hop or *nominated* (none: return)."""
    for f in fields:
        name = f[0]
        if name in NOT_END_TO_END or name in nominated:
            # "close" is a reserved field name (RFC 9110 §18.4): our own
            # ``Connection: close`` would nominate it and strip it.
            raise HopByHopInHeaders(
                f"{f[1].decode('latin-1')!r} is hop-by-hop: pass it in `connection`, not "
                "`headers` (RFC 9110 §7.6.1)"
            )


def write_head(start_line: bytes, block: bytes, conn_block: bytes, framing_line: bytes) -> bytes:
    """Return a whole head: start line, the end-to-end field lines (*block*, as
    :class:`Vetted` joins them), the connection-specific lines (*conn_block*, from
    :func:`connection_lines`), the framing line, and the empty line.
    """
    if conn_block:
        block = b"%s\r\n%s" % (block, conn_block) if block else conn_block
    if not block:
        return b"%s\r\n%s\r\n\r\n" % (start_line, framing_line) if framing_line else (
            start_line + b"\r\n\r\n")
    if framing_line:
        return b"%s\r\n%s\r\n%s\r\n\r\n" % (start_line, block, framing_line)
    return b"%s\r\n%s\r\n\r\n" % (start_line, block)


def connection_lines(conn_fields: list[Field], tokens: list[bytes]) -> bytes:
    """The connection-specific field lines, then a ``Connection`` line listing
    *tokens* (none when empty), CRLF-joined without the last CRLF."""
    lines = list(map(FIELD_LINE, map(RAW_AND_VALUE, conn_fields)))
    if tokens:
        lines.append(b"Connection: " + b", ".join(tokens))
    return b"\r\n".join(lines)


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
