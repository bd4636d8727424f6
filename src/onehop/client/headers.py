"""``HeaderMap``: a response's end-to-end fields as httpx users read them (issue 15).

The core keeps fields as an ordered list of (lower-case name, raw name, value)
byte triples, because the wire needs exactly that. A user wants
``r.headers["content-type"]``: str keys compared case-insensitively (RFC 9110
§5.1), str values, several lines of one field joined with ", " (RFC 9110 §5.3
makes that join equivalent for list-syntax fields). ``HeaderMap`` is that view
over the core's list, behaving as ``httpx.Headers`` does, so code written for
httpx reads onehop's responses unchanged:

- ``h[name]`` and ``h.get(name)`` (Mapping's) join repeated lines with ``", "``;
  a missing name is ``KeyError`` / the default.
- ``h.get_list(name)`` gives one value per line (``split_commas=True`` splits
  list members too); iteration, ``keys()`` and ``items()`` give lower-case
  names once each; ``multi_items()`` gives every (name, value) line in order.
- values are decoded as ASCII, else UTF-8, else ISO-8859-1, chosen once for the
  whole block as httpx does (RFC 9110 §5.5: field values are historically
  ISO-8859-1; UTF-8 is what servers send in practice); ``raw`` gives the bytes.

It is read-only: a response's fields are what the server sent.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Final

from onehop.core import Headers

_ENCODINGS: Final = ("ascii", "utf-8")


class HeaderMap(Mapping[str, str]):
    """A read-only, case-insensitive multi-map of header fields (like ``httpx.Headers``).

    ``len()`` counts field lines, as httpx's does; iteration gives each name
    once. ``fields`` is the core's :class:`~onehop.core.Headers`, for code that
    wants the exact wire form.
    """

    __slots__ = ("_encoding", "fields")

    def __init__(self, fields: Headers) -> None:
        self.fields = fields
        self._encoding: str | None = None

    @property
    def encoding(self) -> str:
        """How values (and names) are decoded: ``ascii``, else ``utf-8``, else ``iso-8859-1``."""
        encoding = self._encoding
        if encoding is None:
            encoding = "iso-8859-1"
            for candidate in _ENCODINGS:
                try:
                    for _, raw, value in self.fields.fields:
                        raw.decode(candidate)
                        value.decode(candidate)
                except UnicodeDecodeError:
                    continue
                encoding = candidate
                break
            self._encoding = encoding
        return encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding = value

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """(name as received, value) byte pairs, in order (httpx's ``Headers.raw``)."""
        return self.fields.raw()

    def _values(self, key: str) -> list[str]:
        lname = key.lower().encode(self.encoding, "replace")
        encoding = self.encoding
        return [f[2].decode(encoding) for f in self.fields.fields if f[0] == lname]

    def __getitem__(self, key: str) -> str:
        """Every line of *key* joined with ``", "`` (RFC 9110 §5.3).

        Raises:
            KeyError: no field of that name.
        """
        if not isinstance(key, str):
            raise KeyError(key)
        values = self._values(key)
        if not values:
            raise KeyError(key)
        return ", ".join(values)

    def get_list(self, key: str, split_commas: bool = False) -> list[str]:
        """One value per line of *key*, in order; with *split_commas*, the members of
        a list-syntax field (RFC 9110 §5.6.1), stripped of OWS, empty ones dropped."""
        values = self._values(key)
        if not split_commas:
            return values
        return [m.strip(" \t") for v in values for m in v.split(",") if m.strip(" \t")]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        lname = key.lower().encode(self.encoding, "replace")
        return any(f[0] == lname for f in self.fields.fields)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.fields)

    def keys(self) -> KeysView[str]:
        """Lower-case names, each once, in order of first appearance."""
        encoding = self.encoding
        return {f[0].decode(encoding): None for f in self.fields.fields}.keys()

    def values(self) -> ValuesView[str]:
        """One value per name, repeated lines joined with ``", "``."""
        return self._merged().values()

    def items(self) -> ItemsView[str, str]:
        """(lower-case name, value) per name, repeated lines joined with ``", "``."""
        return self._merged().items()

    def multi_items(self) -> list[tuple[str, str]]:
        """Every field line as (lower-case name, value), in order."""
        encoding = self.encoding
        return [(f[0].decode(encoding), f[2].decode(encoding)) for f in self.fields.fields]

    def _merged(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for name, value in self.multi_items():
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        return merged

    def __eq__(self, other: object) -> bool:
        """Equal to another map, a mapping or a list of pairs with the same lines (names
        compared case-insensitively, order kept among lines of one name)."""
        if isinstance(other, HeaderMap):
            return self.fields == other.fields
        pairs: list[tuple[str, str]]
        if isinstance(other, Mapping):
            pairs = [(str(k), str(v)) for k, v in other.items()]
        elif isinstance(other, list):
            pairs = [(str(k), str(v)) for k, v in other]
        else:
            return NotImplemented
        mine = sorted(self.multi_items(), key=lambda kv: kv[0])
        theirs = sorted(((k.lower(), v) for k, v in pairs), key=lambda kv: kv[0])
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HeaderMap({self.multi_items()!r})"
