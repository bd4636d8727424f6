"""Header fields, list syntax, and the split of connection-specific fields.

This module owns the answer to "what is hop-by-hop?" (RFC 9110 §7.6.1): the
fixed set below plus every field a ``Connection`` line names. Reader, writer,
server, client and proxy all call :func:`split_fields` or use
:class:`ConnectionInfo`; nobody parses ``Connection`` anywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Final, Union

from onehop.errors import InvalidConnectionHeader, InvalidHeaderToSend

if TYPE_CHECKING:
    from onehop.core.writer import Vetted

#: A field as stored: (lower-case name, name as received, value without OWS).
Field = tuple[bytes, bytes, bytes]
#: What callers may pass where a header list is expected.
HeaderInput = Union["Headers", Iterable[tuple[bytes | str, bytes | str]]]

_TCHAR: Final = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
TOKEN_RE: Final = re.compile(rb"[" + _TCHAR + rb"]+")
#: A field value: VCHAR, obs-text, SP and HTAB; no CTL, no NUL (RFC 9110 §5.5).
FIELD_VALUE_RE: Final = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")

_VCHAR_OBS: Final = rb"[\x21-\x7e\x80-\xff]"
#: "name NUL value", the value without OWS at either edge (:meth:`Headers.__init__`).
_PAIR: Final = (
    rb"[" + _TCHAR + rb"]++\x00(?:" + _VCHAR_OBS + rb"(?:[\t\x20-\x7e\x80-\xff]*+(?<![ \t]))?)?"
)
_PAIRS_RE: Final = re.compile(_PAIR + rb"(?:\n" + _PAIR + rb")*+")
_NAMES_RE: Final = re.compile(rb"[" + _TCHAR + rb"]+(?:\n[" + _TCHAR + rb"]+)*")
_VALUES_RE: Final = re.compile(rb"[\t\n\x20-\x7e\x80-\xff]*")

#: Fields that are connection-specific whether or not Connection names them
#: (RFC 9110 §7.6.1, RFC 9112 §6.1/§7.4, RFC 7230 §A.1.2, RFC 9110 §11.7).
HOP_BY_HOP_FIELDS: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"transfer-encoding",
        b"trailer",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)


_OWS: Final = (b" ", b"\t")


def _to_bytes(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise InvalidHeaderToSend(f"header text must be latin-1: {value!r}") from exc


class Headers:
    """An ordered, case-insensitive multi-map of header fields.

    Keeps each name's case and the order of field lines as received, because
    proxies forward them and some peers care (issue 2, segregation). Values are
    stored without leading or trailing whitespace (RFC 9112 §5.1).

    Immutable: a sent instance keeps, in ``_vetted``, what the writer checked
    and serialized (:func:`onehop.core.writer.vet`), so an instance a server
    sends on every response (see the server's head cache) is checked once.
    """

    __slots__ = ("_fields", "_vetted")

    def __init__(self, fields: HeaderInput = ()) -> None:
        self._vetted: Vetted | None = None
        if isinstance(fields, Headers):
            self._fields: list[Field] = list(fields._fields)
            return
        if type(fields) is list or type(fields) is tuple:
            # Fast path for a sequence of (bytes, bytes) pairs: one regex checks every
            # name and value at once on "name NUL value" lines (NUL and LF are valid in
            # neither, so the lines cannot be misread; the LF count catches an LF
            # inside a value). Values with OWS at an edge, str, or anything invalid
            # take the loop below, which strips or names the culprit.
            try:
                built = [(n.lower(), n, v) for n, v in fields]
                blob = b"\n".join(map(b"\x00".join, fields))
            except (TypeError, ValueError, AttributeError):
                pass
            else:
                if not built or (
                    _PAIRS_RE.fullmatch(blob) is not None
                    and blob.count(b"\n") == len(built) - 1
                ):
                    self._fields = built
                    return
        raws: list[bytes] = []
        vals: list[bytes] = []
        for name, value in fields:
            raws.append(name if type(name) is bytes else _to_bytes(name))
            val = value if type(value) is bytes else _to_bytes(value)
            if val[:1] in _OWS or val[-1:] in _OWS:
                val = val.strip(b" \t")
            vals.append(val)
        # One C-level check for all names and one for all values (neither may hold
        # LF, so it can join them); the slow loop only runs to name the culprit.
        joined_names = b"\n".join(raws)
        joined_values = b"\n".join(vals)
        separators = len(raws) - 1
        if raws and (
            _NAMES_RE.fullmatch(joined_names) is None
            or _VALUES_RE.fullmatch(joined_values) is None
            # an LF inside a name or value would pass as a separator: count them
            or joined_names.count(b"\n") != separators
            or joined_values.count(b"\n") != separators
        ):
            for raw, val in zip(raws, vals, strict=True):
                if not TOKEN_RE.fullmatch(raw):
                    raise InvalidHeaderToSend(f"invalid field name {raw!r}")
                if not FIELD_VALUE_RE.fullmatch(val):
                    raise InvalidHeaderToSend(
                        f"invalid value for field {raw.decode('latin-1')!r}"
                    )
        built = [(raw.lower(), raw, val) for raw, val in zip(raws, vals, strict=True)]
        self._fields = built

    @classmethod
    def _trusted(cls, fields: list[Field]) -> Headers:
        """Wrap already-validated triples without copying (the parser's fast path)."""
        self = cls.__new__(cls)
        self._fields = fields
        self._vetted = None
        return self

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for _, raw, value in self._fields:
            yield raw, value

    def __len__(self) -> int:
        return len(self._fields)

    def __bool__(self) -> bool:
        return bool(self._fields)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            name = name.encode("latin-1")
        if not isinstance(name, bytes):
            return False
        lname = name.lower()
        return any(f[0] == lname for f in self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return [(f[0], f[2]) for f in self._fields] == [(f[0], f[2]) for f in other._fields]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple((f[0], f[2]) for f in self._fields))

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    @property
    def fields(self) -> list[Field]:
        """The (lower-case name, raw name, value) triples, in order. Do not mutate."""
        return self._fields

    def get(self, name: bytes | str, default: bytes | None = None) -> bytes | None:
        """Return the first value of *name*, or *default*."""
        lname = _to_bytes(name).lower()
        for f in self._fields:
            if f[0] == lname:
                return f[2]
        return default

    def get_all(self, name: bytes | str) -> list[bytes]:
        """Return every value of *name*, in order (one per field line)."""
        lname = _to_bytes(name).lower()
        return [f[2] for f in self._fields if f[0] == lname]

    def get_list(self, name: bytes | str) -> list[bytes]:
        """Return the members of a list-syntax field across all its lines (RFC 9110 §5.6.1)."""
        return [m for value in self.get_all(name) for m in _list_members(value)]

    def raw(self) -> list[tuple[bytes, bytes]]:
        """Return (raw name, value) pairs, in order."""
        return [(f[1], f[2]) for f in self._fields]

    def lower_items(self) -> list[tuple[bytes, bytes]]:
        """Return (lower-case name, value) pairs, in order (the ASGI shape)."""
        return [(f[0], f[2]) for f in self._fields]

    def without(self, names: Iterable[bytes]) -> Headers:
        """Return a copy without the fields named (names compared case-insensitively)."""
        drop = {n.lower() for n in names}
        return Headers._trusted([f for f in self._fields if f[0] not in drop])

    def with_field(self, name: bytes | str, value: bytes | str) -> Headers:
        """Return a copy with one more field line appended (validated)."""
        extra = Headers([(name, value)])
        return Headers._trusted(self._fields + extra._fields)


EMPTY_HEADERS: Final = Headers._trusted([])


def _list_members(value: bytes) -> Iterator[bytes]:
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
        for member in _list_members(value):
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
            for member in _list_members(value):
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


class ConnectionInfo:
    """The connection-specific part of one message, already split from the rest.

    ``options`` are the lower-case tokens of every ``Connection`` line (``close``,
    ``keep-alive``, ``upgrade``, and names of connection-specific fields).
    ``fields`` holds every hop-by-hop field line the message carried: the
    ``Connection`` lines themselves, the fixed set (:data:`HOP_BY_HOP_FIELDS`) and
    every field the options name. End-to-end fields are never in here.

    On send, ``fields`` are the connection-specific fields to write (e.g.
    ``Upgrade``, ``Keep-Alive``) and ``options`` extra tokens; the writer writes
    ``Connection`` itself, listing them, plus ``close``/``keep-alive``. Treat an
    instance as immutable: the writer keeps the lines it wrote for it in
    ``_wire`` (one per persistence case), so a shared instance is serialized once.
    """

    __slots__ = ("_keep_alive", "_wire", "fields", "options")

    def __init__(
        self, options: Iterable[bytes | str] = (), fields: HeaderInput = ()
    ) -> None:
        self.options: frozenset[bytes] = (
            frozenset(_to_bytes(o).lower() for o in options) if options else _NO_OPTIONS
        )
        self.fields: Headers = fields if isinstance(fields, Headers) else Headers(fields)
        self._keep_alive: KeepAliveParams | None = None
        self._wire: list[bytes | None] | None = None

    @classmethod
    def _trusted(cls, options: frozenset[bytes], fields: list[Field]) -> ConnectionInfo:
        self = cls.__new__(cls)
        self.options = options
        self.fields = Headers._trusted(fields)
        self._keep_alive = None
        self._wire = None
        return self

    @property
    def close(self) -> bool:
        """Whether ``close`` is among the options (RFC 9112 §9.6)."""
        return b"close" in self.options

    @property
    def keep_alive(self) -> bool:
        """Whether ``keep-alive`` is among the options (RFC 7230 §A.1.2)."""
        return b"keep-alive" in self.options

    @property
    def upgrade(self) -> list[bytes]:
        """The protocols offered or chosen in ``Upgrade``, if ``upgrade`` is an option.

        RFC 9110 §7.8: an Upgrade field not listed in Connection is ignored.
        """
        if b"upgrade" not in self.options:
            return []
        return self.fields.get_list(b"upgrade")

    @property
    def keep_alive_params(self) -> KeepAliveParams:
        """The parsed ``Keep-Alive`` field (empty params when absent)."""
        if self._keep_alive is None:
            self._keep_alive = KeepAliveParams.parse(self.fields.get_all(b"keep-alive"))
        return self._keep_alive

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConnectionInfo):
            return NotImplemented
        return self.options == other.options and self.fields == other.fields

    def __hash__(self) -> int:
        return hash((self.options, self.fields))

    def __repr__(self) -> str:
        return f"ConnectionInfo(options={sorted(self.options)!r}, fields={self.fields!r})"


NO_CONNECTION_INFO: Final = ConnectionInfo._trusted(frozenset(), [])


#: Builds an instance without calling ``__init__`` (no Python frame): for trusted data.
_new: Final = object.__new__
_NO_OPTIONS: Final[frozenset[bytes]] = frozenset()

_OPTIONS_CACHE: dict[bytes, tuple[frozenset[bytes], frozenset[bytes]]] = {}
_OPTIONS_CACHE_SIZE: Final = 256


def _single_line_options(value: bytes) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """(options, every hop-by-hop name) for one Connection line, memoised:
    ``keep-alive`` and ``close`` arrive on most requests. Bounded, so hostile
    values cannot grow it."""
    cached = _OPTIONS_CACHE.get(value)
    if cached is None:
        options = parse_token_list([value])
        cached = (options, HOP_BY_HOP_FIELDS | options)
        if len(_OPTIONS_CACHE) < _OPTIONS_CACHE_SIZE and len(value) < 64:
            _OPTIONS_CACHE[value] = cached
    return cached


#: Fields the parser must look at: framing, Host, and every fixed hop-by-hop one.
_SPECIAL: Final = HOP_BY_HOP_FIELDS | {b"host", b"content-length"}


def scan_fields(fields: list[Field]) -> dict[bytes, list[bytes]] | None:
    """Collect the values of the fields that framing, Host and segregation need.

    One pass over the fields instead of one per rule (hot path); returns None
    when the message has none of them.
    """
    return _scan(fields)[1]


def _scan(fields: list[Field]) -> tuple[list[Field], dict[bytes, list[bytes]] | None]:
    """:func:`scan_fields`, also returning the special field lines themselves."""
    # (Loops, not comprehensions: on CPython 3.11 each comprehension is a call.)
    hits: list[Field] = []
    for f in fields:
        if f[0] in _SPECIAL:
            hits.append(f)
    if not hits:
        return hits, None
    special: dict[bytes, list[bytes]] = {}
    for f in hits:
        values = special.get(f[0])
        if values is None:
            special[f[0]] = [f[2]]
        else:
            values.append(f[2])
    return hits, special


def split_fields(
    fields: list[Field], special: dict[bytes, list[bytes]] | bool | None = True
) -> tuple[Headers, ConnectionInfo]:
    """Split parsed fields into end-to-end headers and connection-specific ones.

    RFC 9110 §7.6.1: a proxy "MUST remove any such [connection-specific] fields
    ... and the Connection header field itself" and the fixed hop-by-hop set.
    This is the only function that decides it; the fast path returns the input
    list unchanged when no field is hop-by-hop. *special* is the result of
    :func:`scan_fields` when the caller already has it.

    Raises:
        InvalidConnectionHeader: a Connection member is not a token.
    """
    if isinstance(special, bool):
        if not special:
            return _split(fields, None, None)
        hits, scanned = _scan(fields)
        return _split(fields, scanned, hits)
    return _split(fields, special, None)


def _split(
    fields: list[Field], special: dict[bytes, list[bytes]] | None, hits: list[Field] | None
) -> tuple[Headers, ConnectionInfo]:
    """:func:`split_fields`; *hits* are the special lines from :func:`_scan`, if known."""
    hop = HOP_BY_HOP_FIELDS
    headers = _new(Headers)
    headers._vetted = None
    if not special or hop.isdisjoint(special):
        headers._fields = fields
        return headers, NO_CONNECTION_INFO
    lines = special.get(b"connection")
    if lines is None:
        options: frozenset[bytes] = _NO_OPTIONS
        nominated = hop
    elif len(lines) == 1:
        cached = _OPTIONS_CACHE.get(lines[0])
        options, nominated = cached if cached is not None else _single_line_options(lines[0])
    else:
        options = parse_token_list(lines)
        nominated = hop | options
    if hits is not None and _SPECIAL.issuperset(options):
        # Every connection-specific line is among the special ones (usually one
        # ``Connection: keep-alive``): pick them out there, not with two full passes.
        e2e = fields.copy()
        conn: list[Field] = []
        for f in hits:
            if f[0] in nominated:
                conn.append(f)
                e2e.remove(f)  # (an identical tuple: found by identity, order kept)
    else:
        e2e = [f for f in fields if f[0] not in nominated]
        conn = [f for f in fields if f[0] in nominated]
    headers._fields = e2e
    conn_headers = _new(Headers)
    conn_headers._fields = conn
    conn_headers._vetted = None
    info = _new(ConnectionInfo)
    info.options = options
    info.fields = conn_headers
    info._keep_alive = None
    info._wire = None
    return headers, info


def split_headers(headers: HeaderInput) -> tuple[Headers, ConnectionInfo]:
    """:func:`split_fields` for caller-supplied headers (e.g. an ASGI app's)."""
    h = headers if isinstance(headers, Headers) else Headers(headers)
    return split_fields(h.fields)
