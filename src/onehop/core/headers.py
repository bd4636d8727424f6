"""Header fields, their serialized form, and the split of connection-specific fields.

This module owns the answer to "what is hop-by-hop?" (RFC 9110 §7.6.1): the
fixed set below plus every field a ``Connection`` line names. Reader, writer,
server, client and proxy all call :func:`split_fields` or use
:class:`ConnectionInfo`; nobody parses ``Connection`` anywhere else, and nobody
but :meth:`ConnectionInfo.compose` writes it.

The two classes keep their own serialized form (:meth:`Headers.wire`,
:meth:`ConnectionInfo.lines`), computed once per instance: a server sends the
same few instances on most responses. That is why they are immutable by
contract, and why this module imports no writer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Final, Union

from onehop.core.framing import plain_content_length
from onehop.core.native import INTERPRETED
from onehop.core.native import new_instance as _new
from onehop.core.syntax import (
    FIELD_VALUE_RE,
    TCHAR,
    TOKEN_RE,
    KeepAliveParams,
    list_members,
    parse_token_list,
)
from onehop.errors import HopByHopInHeaders, InvalidHeaderToSend

#: A field as stored: (lower-case name, name as received, value without OWS).
Field = tuple[bytes, bytes, bytes]
#: What callers may pass where a header list is expected.
HeaderInput = Union["Headers", Iterable[tuple[bytes | str, bytes | str]]]

_VCHAR_OBS: Final = rb"[\x21-\x7e\x80-\xff]"
#: "name NUL value", the value without OWS at either edge (:meth:`Headers.__init__`).
_PAIR: Final = (
    rb"[" + TCHAR + rb"]++\x00(?:" + _VCHAR_OBS + rb"(?:[\t\x20-\x7e\x80-\xff]*+(?<![ \t]))?)?"
)
_PAIRS_RE: Final = re.compile(_PAIR + rb"(?:\n" + _PAIR + rb")*+")
_NAMES_RE: Final = re.compile(rb"[" + TCHAR + rb"]+(?:\n[" + TCHAR + rb"]+)*")
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


#: Names that may not be sent among the end-to-end ``headers``: the fixed hop-by-hop
#: set, and ``close``, a reserved field name (RFC 9110 §18.4) that our own
#: ``Connection: close`` would nominate and so strip.
NOT_END_TO_END: Final = HOP_BY_HOP_FIELDS | {b"close"}

#: Connection-specific fields the writer makes itself or never sends, so a
#: :class:`ConnectionInfo` given to send is not copied for them: ``Connection``
#: (written from the options and the persistence decision, RFC 9110 §7.6.1),
#: ``Transfer-Encoding`` (written from the framing decision, RFC 9112 §6.1) and
#: the obsolete ``Proxy-Connection``. The one list of "the writer owns these".
WRITER_OWNED_FIELDS: Final = frozenset({b"connection", b"transfer-encoding", b"proxy-connection"})

#: Connection-specific fields our ``Connection`` line does not name: those the writer
#: owns, and those every recipient treats as hop-by-hop already. TE, Upgrade and
#: Keep-Alive are named, since RFC 9110 §10.1.4, §7.8 and RFC 7230 §A.1.2 ask for it.
_UNLISTED: Final = WRITER_OWNED_FIELDS | {
    b"proxy-authorization", b"proxy-authenticate", b"trailer"}

#: (raw name, value) of a field triple, and "name: value" of such a pair (C-level map).
RAW_AND_VALUE: Final = itemgetter(1, 2)
FIELD_LINE: Final = b": ".join
_LOWER_AND_VALUE: Final = itemgetter(0, 2)
_NAME: Final = itemgetter(0)

_OWS: Final = (b" ", b"\t")
_NO_OPTIONS: Final[frozenset[bytes]] = frozenset()


def _to_bytes(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise InvalidHeaderToSend(f"header text must be latin-1: {value!r}") from exc


class WireFields:
    """What sending one :class:`Headers` needs, worked out once per instance.

    Built by :meth:`Headers.wire`. A server sends the same header list on most
    responses (its head cache shares one instance), so the hop-by-hop check
    (RFC 9110 §7.6.1), the Host and Content-Length look-ups and the joined
    field lines are done once per instance, not once per message.
    """

    __slots__ = ("block", "has_host", "length", "lengths", "names")

    def __init__(self, fields: list[Field], joined: bytes | None = None) -> None:
        names = frozenset(map(_NAME, fields))
        if not NOT_END_TO_END.isdisjoint(names):
            reject_hop_by_hop(fields, frozenset())
        #: The lower-case names present.
        self.names = names
        #: Whether a Host field is among them (RFC 9112 §3.2).
        self.has_host = b"host" in names
        #: The Content-Length values, for the framing decision.
        self.lengths: list[bytes] = []
        #: The one plain Content-Length value as a number; None: the framing rule
        #: parses ``lengths`` (several values, or one to reject with its reason).
        self.length: int | None = None
        if b"content-length" in names:
            self.lengths = [f[2] for f in fields if f[0] == b"content-length"]
            self.length = plain_content_length(self.lengths)
        #: The field lines, CRLF-joined, without the last CRLF. *joined*, when given,
        #: holds the same pairs "name NUL value" LF-joined (neither NUL nor LF can
        #: occur in a checked field): two replaces cost a fourth of a join per line.
        self.block = joined.replace(b"\x00", b": ").replace(b"\n", b"\r\n") if (
            joined is not None) else b"\r\n".join(map(FIELD_LINE, map(RAW_AND_VALUE, fields)))


def reject_hop_by_hop(fields: list[Field], nominated: frozenset[bytes]) -> None:
    """Raise for the first field that is hop-by-hop or *nominated* (none: return).

    Raises:
        HopByHopInHeaders: RFC 9110 §7.6.1; such a field goes in ``connection``.
    """
    for f in fields:
        name = f[0]
        if name in NOT_END_TO_END or name in nominated:
            raise HopByHopInHeaders(
                f"{f[1].decode('latin-1')!r} is hop-by-hop: pass it in `connection`, not "
                "`headers` (RFC 9110 §7.6.1)"
            )


class Headers:
    """An ordered, case-insensitive multi-map of header fields.

    Keeps each name's case and the order of field lines as received, because
    proxies forward them and some peers care (issue 2, segregation). Values are
    stored without leading or trailing whitespace (RFC 9112 §5.1).

    Immutable by contract: ``fields`` is the stored list itself (no copy on
    read), so never assign or mutate it. That is what lets an instance keep its
    own serialized form (:meth:`wire`), so one a server sends on every response
    (its head cache) is checked and joined once.
    """

    __slots__ = ("_joined", "_wire", "fields")

    #: The (lower-case name, raw name, value) triples, in order: the stored list,
    #: not a copy (read-only by contract; a plain attribute, so reading is free).
    fields: list[Field]

    def __init__(self, fields: HeaderInput = (), *, parsed: list[Field] | None = None) -> None:
        self._wire: WireFields | None = None
        #: The pairs as checked, "name NUL value" LF-joined (list fast path only):
        #: :class:`WireFields` turns it into the field lines with two replaces.
        self._joined: bytes | None = None
        if parsed is not None:  # (the trusted constructor: see from_parsed)
            self.fields = parsed
            return
        if isinstance(fields, Headers):
            self.fields = list(fields.fields)
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
                    self.fields = built
                    self._joined = blob
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
        self.fields = [(raw.lower(), raw, val) for raw, val in zip(raws, vals, strict=True)]

    @classmethod
    def from_parsed(cls, fields: list[Field]) -> Headers:
        """Wrap triples that are already valid, without copying or checking them.

        For fields the parser produced, or taken from another :class:`Headers`
        (a proxy filtering what it received): names lower-cased in the first
        item, values without OWS at either edge. The list becomes the instance's
        own: the caller must not change it afterwards.
        """
        if INTERPRETED:  # (the constructor without its frame: see core.native)
            self = _new(cls)
            self.fields = fields
            self._wire = None
            self._joined = None
            return self
        return cls(parsed=fields)

    @classmethod
    def _trusted(cls, fields: list[Field]) -> Headers:
        """Former name of :meth:`from_parsed`, kept while other packages move over."""
        return cls(parsed=fields)

    @property
    def _fields(self) -> list[Field]:
        """Former name of :attr:`fields`, kept while other packages move over."""
        return self.fields

    def wire(self) -> WireFields:
        """What the writer needs to send these fields, computed once per instance.

        Raises:
            HopByHopInHeaders: a hop-by-hop field (RFC 9110 §7.6.1) is among them.
        """
        wire = self._wire
        if wire is None:
            wire = self._wire = WireFields(self.fields, self._joined)
            self._joined = None
        return wire

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return map(RAW_AND_VALUE, self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            name = name.encode("latin-1")
        if not isinstance(name, bytes):
            return False
        lname = name.lower()
        return any(f[0] == lname for f in self.fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.lower_items() == other.lower_items()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self.lower_items()))

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def first(self, lname: bytes) -> bytes | None:
        """Return the first value of the field whose lower-case name is *lname*, or None.

        The fast form of :meth:`get` for code that already holds a lower-case
        bytes name (no conversion, no default).
        """
        for f in self.fields:
            if f[0] == lname:
                return f[2]
        return None

    def get(self, name: bytes | str, default: bytes | None = None) -> bytes | None:
        """Return the first value of *name*, or *default*."""
        value = self.first(_to_bytes(name).lower())
        return default if value is None else value

    def get_all(self, name: bytes | str) -> list[bytes]:
        """Return every value of *name*, in order (one per field line)."""
        lname = _to_bytes(name).lower()
        return [f[2] for f in self.fields if f[0] == lname]

    def get_list(self, name: bytes | str) -> list[bytes]:
        """Return the members of a list-syntax field across all its lines (RFC 9110 §5.6.1)."""
        return [m for value in self.get_all(name) for m in list_members(value)]

    def raw(self) -> list[tuple[bytes, bytes]]:
        """Return (raw name, value) pairs, in order."""
        return list(map(RAW_AND_VALUE, self.fields))

    def lower_items(self) -> list[tuple[bytes, bytes]]:
        """Return (lower-case name, value) pairs, in order: the ASGI shape (one C-level map)."""
        return list(map(_LOWER_AND_VALUE, self.fields))

    def without(self, names: Iterable[bytes]) -> Headers:
        """Return a copy without the fields named (names compared case-insensitively)."""
        drop = {n.lower() for n in names}
        return Headers.from_parsed([f for f in self.fields if f[0] not in drop])

    def with_field(self, name: bytes | str, value: bytes | str) -> Headers:
        """Return a copy with one more field line appended (validated)."""
        extra = Headers([(name, value)])
        return Headers.from_parsed(self.fields + extra.fields)


# (INTERPRETED: the pure build builds trusted instances without an ``__init__`` frame,
# a fourth of the cost; see onehop.core.native.)

EMPTY_HEADERS: Final = Headers.from_parsed([])


class ConnectionInfo:
    """The connection-specific part of one message, already split from the rest.

    ``options`` are the lower-case tokens of every ``Connection`` line (``close``,
    ``keep-alive``, ``upgrade``, and names of connection-specific fields).
    ``fields`` holds every hop-by-hop field line the message carried: the
    ``Connection`` lines themselves, the fixed set (:data:`HOP_BY_HOP_FIELDS`) and
    every field the options name. End-to-end fields are never in here.

    On send, ``fields`` are the connection-specific fields to write (e.g.
    ``Upgrade``, ``Keep-Alive``) and ``options`` extra tokens; the writer writes
    ``Connection`` itself, listing them, plus ``close``/``keep-alive``
    (:meth:`lines`). Treat an instance as immutable: it keeps the lines it
    composed, one per persistence case, so a shared instance (a server's
    ``Keep-Alive`` hint) is composed once.
    """

    __slots__ = ("_keep_alive", "_lines", "fields", "options")

    def __init__(
        self, options: Iterable[bytes | str] = (), fields: HeaderInput = (), *,
        parsed: frozenset[bytes] | None = None, parsed_fields: list[Field] | None = None,
    ) -> None:
        self._keep_alive: KeepAliveParams | None = None
        self._lines: list[bytes | None] | None = None
        if parsed is not None and parsed_fields is not None:
            # (the trusted constructor: see from_parsed)
            self.options: frozenset[bytes] = parsed
            self.fields: Headers = Headers(parsed=parsed_fields)
            return
        self.options = (
            frozenset(_to_bytes(o).lower() for o in options) if options else _NO_OPTIONS
        )
        self.fields = fields if isinstance(fields, Headers) else Headers(fields)

    @classmethod
    def from_parsed(cls, options: frozenset[bytes], fields: list[Field]) -> ConnectionInfo:
        """Wrap parts that are already valid, without copying or checking them.

        *options* are lower-case tokens; *fields* are valid triples, as
        :meth:`Headers.from_parsed` takes them (and, like there, become the
        instance's own).
        """
        if INTERPRETED:  # (the constructor without its frame: see core.native)
            self = _new(cls)
            self.options = options
            self.fields = Headers.from_parsed(fields)
            self._keep_alive = None
            self._lines = None
            return self
        return cls(parsed=options, parsed_fields=fields)

    @classmethod
    def _trusted(cls, options: frozenset[bytes], fields: list[Field]) -> ConnectionInfo:
        """Former name of :meth:`from_parsed`, kept while other packages move over."""
        return cls(parsed=options, parsed_fields=fields)

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

    def lines(self, persist: bool, peer_10: bool) -> bytes:
        """The field lines that send this part, memoized per case (see :meth:`compose`)."""
        memo = self._lines
        if memo is None:
            memo = self._lines = [None, None, None, None]
        key = persist + 2 * peer_10
        lines = memo[key]
        if lines is None:
            lines = memo[key] = self.compose(persist, peer_10)
        return lines

    def compose(self, persist: bool, peer_10: bool, drop: frozenset[bytes] = _NO_OPTIONS) -> bytes:
        """The field lines that send this part: its fields, then one ``Connection`` line.

        CRLF-joined, without the last CRLF. The ``Connection`` line lists
        ``close`` when the connection ends after this message (*persist* false,
        RFC 9112 §9.6), else ``keep-alive`` to an HTTP/1.0 peer (*peer_10*,
        RFC 9112 §9.3, RFC 7230 §A.1.2); then every field sent here that a
        recipient would not know as hop-by-hop (RFC 9110 §7.6.1), then the other
        options, sorted; no tokens in *drop* (a 1xx cannot close, a tunnel has no
        persistence to announce). The fields the writer owns
        (:data:`WRITER_OWNED_FIELDS`) are not copied, and ``Keep-Alive`` is not
        sent on a closing connection: its hints would be false.
        """
        if not persist:
            tokens = [b"close"]
        elif peer_10:
            tokens = [b"keep-alive"]
        else:
            tokens = []
        conn_fields = []
        for f in self.fields.fields:
            name = f[0]
            if not persist and name == b"keep-alive":
                continue
            if name not in WRITER_OWNED_FIELDS:
                conn_fields.append(f)
            if name not in _UNLISTED and name not in tokens:
                tokens.append(name)
        for option in sorted(self.options):
            if option not in (b"close", b"keep-alive") and option not in tokens:
                tokens.append(option)
        if drop:
            tokens = [t for t in tokens if t not in drop]
        lines = list(map(FIELD_LINE, map(RAW_AND_VALUE, conn_fields)))
        if tokens:
            lines.append(b"Connection: " + b", ".join(tokens))
        return b"\r\n".join(lines)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConnectionInfo):
            return NotImplemented
        return self.options == other.options and self.fields == other.fields

    def __hash__(self) -> int:
        return hash((self.options, self.fields))

    def __repr__(self) -> str:
        return f"ConnectionInfo(options={sorted(self.options)!r}, fields={self.fields!r})"


NO_CONNECTION_INFO: Final = ConnectionInfo.from_parsed(frozenset(), [])


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
    return scan(fields)[1]


def scan(fields: list[Field]) -> tuple[list[Field], dict[bytes, list[bytes]] | None]:
    """:func:`scan_fields`, also returning the special field lines themselves (for
    :func:`split_scanned`)."""
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
            return split_scanned(fields, None, None)
        hits, scanned = scan(fields)
        return split_scanned(fields, scanned, hits)
    return split_scanned(fields, special, None)


def split_scanned(
    fields: list[Field], special: dict[bytes, list[bytes]] | None, hits: list[Field] | None
) -> tuple[Headers, ConnectionInfo]:
    """:func:`split_fields` after :func:`scan` (*special* and *hits*: its results, or
    *hits* None when unknown): the reader scans once for Host, framing and this.

    Raises:
        InvalidConnectionHeader: a Connection member is not a token.
    """
    hop = HOP_BY_HOP_FIELDS
    if not special or hop.isdisjoint(special):
        # (Most messages end here.)
        if INTERPRETED:  # (Headers(parsed=fields) without its frame: see core.native)
            headers = _new(Headers)
            headers.fields = fields
            headers._wire = None
            headers._joined = None
            return headers, NO_CONNECTION_INFO
        return Headers(parsed=fields), NO_CONNECTION_INFO
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
    if INTERPRETED:  # (the constructors without their frames: see core.native)
        headers = _new(Headers)
        headers.fields = e2e
        headers._wire = None
        headers._joined = None
        conn_headers = _new(Headers)
        conn_headers.fields = conn
        conn_headers._wire = None
        conn_headers._joined = None
        info = _new(ConnectionInfo)
        info.options = options
        info.fields = conn_headers
        info._keep_alive = None
        info._lines = None
        return headers, info
    return Headers(parsed=e2e), ConnectionInfo(parsed=options, parsed_fields=conn)


def split_headers(headers: HeaderInput) -> tuple[Headers, ConnectionInfo]:
    """:func:`split_fields` for caller-supplied headers (e.g. an ASGI app's)."""
    h = headers if isinstance(headers, Headers) else Headers(headers)
    return split_fields(h.fields)
