"""Field syntax that parser, writer and headers share (RFC 9110 §5.5, §5.6).

Tokens, field values, and the list syntax ``#element`` with the two lists we
read: ``Connection`` options and the ``Keep-Alive`` hints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from onehop.errors import InvalidConnectionHeader

#: tchar (RFC 9110 §5.6.2), as a character-class body.
TCHAR: Final = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
TOKEN_RE: Final = re.compile(rb"[" + TCHAR + rb"]+")
#: A field value: VCHAR, obs-text, SP and HTAB; no CTL, no NUL (RFC 9110 §5.5).
FIELD_VALUE_RE: Final = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


def list_members(value: bytes) -> Iterator[bytes]:
    """Yield the non-empty members of one list-syntax field value, OWS stripped."""
    for member in value.split(b","):
        member = member.strip(b" \t")
        if member:
            yield member


def parse_token_list(values: Iterable[bytes], field: str = "Connection") -> frozenset[bytes]:
    """Parse ``1#token`` across several field lines into lower-case tokens.

    RFC 9110 §5.6.1: empty elements and OWS around commas are allowed and
    ignored; tokens are case-insensitive (§7.6.1). A non-token member makes the
    whole field invalid: we raise rather than guess which fields it meant to
    name, because guessing wrong lets a hop-by-hop field through a proxy.

    Raises:
        InvalidConnectionHeader: a member is not a token.
    """
    tokens: set[bytes] = set()
    for value in values:
        for member in list_members(value):
            if not TOKEN_RE.fullmatch(member):
                raise InvalidConnectionHeader(
                    f"invalid {field} option {member.decode('latin-1')!r}: not a token"
                )
            tokens.add(member.lower())
    return frozenset(tokens)


class KeepAliveParams:
    """The ``Keep-Alive`` field's hints (RFC 2068 §19.7.1.1, RFC 7230 §A.1.2).

    ``timeout`` is how many seconds the sender will hold an idle connection,
    ``max`` how many more requests it will take. Both are hints: a malformed
    parameter is ignored rather than fatal, since the field is advisory.
    """

    __slots__ = ("max", "timeout")

    def __init__(self, timeout: int | None = None, max: int | None = None) -> None:
        self.timeout = timeout
        self.max = max

    @classmethod
    def parse(cls, values: Iterable[bytes]) -> KeepAliveParams:
        """Parse ``timeout=N, max=M`` from the Keep-Alive field lines."""
        params: dict[bytes, int] = {}
        for value in values:
            for member in list_members(value):
                key, sep, num = member.partition(b"=")
                key = key.strip(b" \t").lower()
                num = num.strip(b" \t").strip(b'"')
                if sep and num.isdigit() and len(num) <= 9 and key not in params:
                    params[key] = int(num)
        return cls(params.get(b"timeout"), params.get(b"max"))

    def to_value(self) -> bytes:
        """Serialize back to a field value (empty when nothing is set)."""
        parts = []
        if self.timeout is not None:
            parts.append(b"timeout=%d" % self.timeout)
        if self.max is not None:
            parts.append(b"max=%d" % self.max)
        return b", ".join(parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeepAliveParams):
            return NotImplemented
        return (self.timeout, self.max) == (other.timeout, other.max)

    def __hash__(self) -> int:
        return hash((self.timeout, self.max))

    def __repr__(self) -> str:
        return f"KeepAliveParams(timeout={self.timeout!r}, max={self.max!r})"
