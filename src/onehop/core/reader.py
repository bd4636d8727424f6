"""Parse heads and bodies from a byte buffer (RFC 9112 §2-§7).

Design for speed and strictness at once: the fast path matches a complete
head's start line with one regular expression and validates and splits its
fields with one ``findall`` (:func:`fast_fields`), in place on the receive
buffer (C speed, linear, no backtracking); a chunk and its CRLF are taken in one
step. Whenever the fast path is unsure it changes nothing and declines; the slow
path then starts over on the same bytes, validates the whole field block with
one anchored expression and, if that fails, walks the lines to name the exact
fault (obs-fold, bare CR, whitespace before the colon, ...). So both paths
accept the same messages and raise the same errors. The reader never loops over
bytes in Python.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Final

from onehop.core.headers import Field
from onehop.core.syntax import FIELD_VALUE_RE, TCHAR, TOKEN_RE
from onehop.core.target import check_request_target
from onehop.errors import (
    BadStartLine,
    BareCR,
    BareLF,
    BodyTooLarge,
    ChunkExtensionTooLong,
    HeaderTooLarge,
    IncompleteMessage,
    InvalidChunk,
    InvalidFieldName,
    InvalidFieldValue,
    ObsFold,
    RemoteProtocolError,
    TrailerTooLarge,
    UnsupportedVersion,
    URITooLong,
    WhitespaceBeforeColon,
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits for what we accept, with defaults close to nginx's.

    nginx allows 8 KiB per request line or field line and 32 KiB per head
    (``large_client_header_buffers 4 8k``); h11 16 KiB per head.
    """

    max_head_size: int = 32 * 1024
    max_line_size: int = 8 * 1024
    max_fields: int = 100
    max_chunk_ext_size: int = 1024
    max_trailer_size: int = 8 * 1024
    max_body_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_head_size", "max_line_size", "max_fields", "max_chunk_ext_size",
                     "max_trailer_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_body_size is not None and self.max_body_size < 0:
            raise ValueError("max_body_size must be >= 0 or None")

    def __reduce__(self) -> tuple[type[Limits], tuple[int | None, ...]]:
        """Pickle by the constructor (``--workers`` sends the config to each worker): a
        compiled frozen dataclass cannot be rebuilt by setting its fields one by one."""
        return (Limits, tuple(getattr(self, f.name) for f in dataclasses.fields(self)))


DEFAULT_LIMITS: Final = Limits()

_TCHAR: Final = TCHAR
_FIELD_BLOCK_RE: Final = re.compile(rb"(?:[" + _TCHAR + rb"]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")
_FIELD_SPLIT_RE: Final = re.compile(rb"([^:]+):[ \t]*([^\r]*)\r\n")
_REQUEST_LINE_RE: Final = re.compile(
    rb"([" + _TCHAR + rb"]+) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])"
)
_STATUS_LINE_RE: Final = re.compile(
    rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?"
)
#: One valid field line, anchored at a line start (fast path; see :func:`fast_fields`).
_FIELD_LINE_RE: Final = re.compile(
    rb"^([" + _TCHAR + rb"]+):[ \t]*([\t\x20-\x7e\x80-\xff]*)\r\n", re.MULTILINE
)
#: A request-line or status-line of HTTP/1.x with its CRLF (fast path of the head parsers).
REQUEST_LINE_CRLF_RE: Final = re.compile(
    rb"([" + _TCHAR + rb"]+) ([\x21-\x7e]+) HTTP/1\.([0-9])\r\n"
)
STATUS_LINE_CRLF_RE: Final = re.compile(
    rb"HTTP/1\.([0-9]) ([1-9][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?\r\n"
)
_CHUNK_SIZE_CRLF_RE: Final = re.compile(rb"([0-9A-Fa-f]{1,16})\r\n")
_BARE_RE: Final = re.compile(rb"(?<!\r)\n|\r(?!\n)")
_CHUNK_LINE_RE: Final = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[" + _TCHAR + rb"]+(?:[ \t]*=[ \t]*(?:[" + _TCHAR
    + rb"]+|\"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*\"))?)*)"
)
_HEX_PREFIX_RE: Final = re.compile(rb"[0-9A-Fa-f]*")
_HEX_ONLY_RE: Final = re.compile(rb"[0-9A-Fa-f]+")
#: Longest hex chunk-size accepted: 16 digits fit in 64 bits; more is an overflow attack.
_MAX_CHUNK_SIZE_DIGITS: Final = 16


def _version(major: bytes, minor: bytes) -> bytes:
    """Map a received HTTP-version to the one we speak (RFC 9110 §2.5).

    A 1.x with x > 1 is treated as 1.1 (minor versions are backward compatible);
    any other major version is refused with 505.
    """
    if major != b"1":
        raise UnsupportedVersion(f"unsupported HTTP version {major.decode()}.{minor.decode()}")
    return b"1.0" if minor == b"0" else b"1.1"


def diagnose_fields(block: bytes, limits: Limits, what: str = "field") -> RemoteProtocolError:
    """Name the first fault in a field block the fast regex rejected (slow path)."""
    m = _BARE_RE.search(block)
    if m is not None:
        if m.group() == b"\n":
            return BareLF(f"bare LF in {what} section")
        return BareCR(f"bare CR in {what} section")
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            return ObsFold("obsolete line folding (field line starting with whitespace)")
        name, sep, value = line.partition(b":")
        if not sep:
            return InvalidFieldName(f"{what} line without a colon: {line[:40]!r}")
        if name != name.rstrip(b" \t"):
            return WhitespaceBeforeColon(
                f"whitespace between field name {name.strip().decode('latin-1')!r} and colon"
            )
        if not TOKEN_RE.fullmatch(name):
            return InvalidFieldName(f"invalid field name {name[:40]!r}")
        if not FIELD_VALUE_RE.fullmatch(value):
            return InvalidFieldValue(
                f"invalid octet in value of field {name.decode('latin-1')!r}"
            )
    return InvalidFieldName(f"malformed {what} section")


def parse_fields(block: bytes, limits: Limits, what: str = "field") -> list[Field]:
    """Parse a field block (each line ending in CRLF) into validated triples.

    Raises:
        HeaderTooLarge, and the causes of :func:`diagnose_fields`.
    """
    if not block:
        return []
    if _FIELD_BLOCK_RE.fullmatch(block) is None:
        raise diagnose_fields(block, limits, what)
    if len(block) > limits.max_line_size and max(map(len, block.split(b"\r\n"))) > (
        limits.max_line_size
    ):
        raise HeaderTooLarge(f"a {what} line is longer than {limits.max_line_size} bytes")
    # Measured: one findall plus this comprehension beats zipping three C-level
    # scans (a value regex that trims OWS backtracks) by 2-3x.
    pairs: list[tuple[bytes, bytes]] = _FIELD_SPLIT_RE.findall(block)
    fields = [(n.lower(), n, v.rstrip(b" \t")) for n, v in pairs]
    if len(fields) > limits.max_fields:
        raise HeaderTooLarge(f"more than {limits.max_fields} header fields")
    return fields


def fast_fields(buf: bytearray, pos: int, endpos: int, limits: Limits) -> list[Field] | None:
    """Split the field lines in ``buf[pos:endpos]`` if every one is valid, else None.

    The fast path of :func:`parse_fields`, run on the receive buffer in place:
    one ``findall`` both validates and splits. Each match is one whole line
    (``^`` anchors it after an LF; no class admits CR or LF), so when there are
    as many matches as LFs in the block, the matches are exactly its lines and
    there is no bare CR or LF. *pos* must follow an LF. None means "not sure"
    (a fault, a limit, or an over-long line): the caller then runs the slow
    path on the same bytes, which names the fault.
    """
    if pos == endpos:
        return []
    if endpos - pos > limits.max_line_size:
        return None  # a line might be too long: let the slow path measure
    # (Typed: compiled, each pair unpacks as a tuple of bytes, not through an iterator.)
    pairs: list[tuple[bytes, bytes]] = _FIELD_LINE_RE.findall(buf, pos, endpos)
    if len(pairs) != buf.count(b"\n", pos, endpos) or len(pairs) > limits.max_fields:
        return None
    # (Loops, not comprehensions: on CPython 3.11 a comprehension is a call, and a
    # loop measured ~500 instructions less per head.)
    fields: list[Field] = []
    if buf.find(b" \r\n", pos, endpos) < 0 and buf.find(b"\t\r\n", pos, endpos) < 0:
        for n, v in pairs:
            fields.append((n.lower(), n, v))
    else:
        for n, v in pairs:
            fields.append((n.lower(), n, v.rstrip(b" \t")))
    return fields


#: A start line's parts as :meth:`HeadParser.take` returns them: (method, target,
#: minor version) of a request, (minor version, status code, reason or None) of a response.
StartLine = tuple[bytes, bytes, "bytes | None"]


class HeadParser:
    """Finds and splits one message head in a growing buffer.

    Owns a scan offset so that a head arriving one byte at a time is searched
    in linear total time (slowloris cannot make us rescan), and whether the
    start line of the head still arriving was already checked: a malformed
    request-line (or status-line) is refused as soon as its CRLF arrives, not
    when the whole head has (or the header timeout fires), as llhttp and nginx
    do.
    """

    __slots__ = ("_is_request", "_limits", "_scanned", "_start_checked", "_start_re")

    def __init__(self, limits: Limits, is_request: bool) -> None:
        self._limits = limits
        self._is_request = is_request
        self._start_re = REQUEST_LINE_CRLF_RE if is_request else STATUS_LINE_CRLF_RE
        self._scanned = 0
        self._start_checked = False

    def take(self, buf: bytearray) -> tuple[StartLine, list[Field]] | None:
        """Remove a complete head from *buf*; return (start line parts, fields).

        The start line parts are (method, target, minor version) for a request
        and (minor version, status code, reason or None) for a response, as the
        fast expressions capture them: the major version is 1, and for a
        request the target fits the method (RFC 9112 §3.2). None means more
        bytes are needed.

        Fast path: find the head, match the start line and split the fields in
        place, without copying. Whenever it is not sure (no complete head yet,
        a fault, a limit near, leading CRLFs) it leaves *buf* untouched, and the
        slow path (:meth:`take_head`) starts over on the same bytes and names the
        exact fault, so both paths agree on every input
        (``tests/core/test_head_parsing.py`` checks it).

        Raises:
            BadStartLine, UnsupportedVersion, InvalidRequestTarget, URITooLong,
            HeaderTooLarge, and the field faults of :func:`parse_fields`.
        """
        scanned = self._scanned
        end = buf.find(b"\r\n\r\n", scanned - 3 if scanned > 3 else 0)
        if end > 0:
            m = self._start_re.match(buf, 0, end + 2)
            if m is not None:
                pos = m.end()
                limits = self._limits
                if pos - 2 <= limits.max_line_size and end + 4 <= limits.max_head_size:
                    fields = fast_fields(buf, pos, end + 2, limits)
                    if fields is not None:
                        start: StartLine = m.groups()  # type: ignore[assignment]
                        del buf[: end + 4]
                        self._scanned = 0
                        self._start_checked = False
                        if self._is_request:
                            check_request_target(start[0], start[1])
                        return start, fields
        got = self.take_head(buf)
        if got is None:
            return None
        line, block = got
        if self._is_request:
            method, target, version = parse_request_line(line)
            check_request_target(method, target)  # (before the fields: the first fault is named)
            start = (method, target, b"0" if version == b"1.0" else b"1")
        else:
            version, status, reason = parse_status_line(line)
            start = (b"0" if version == b"1.0" else b"1", b"%d" % status, reason)
        return start, parse_fields(block, self._limits)

    def take_head(self, buf: bytearray) -> tuple[bytes, bytes] | None:
        """Remove a complete head from *buf*; return (start line, field block).

        Returns None when more bytes are needed.

        Raises:
            BareLF, BareCR, URITooLong, HeaderTooLarge.
        """
        # RFC 9112 §2.2: SHOULD ignore at least one empty line before the request-line.
        while buf[:2] == b"\r\n":
            del buf[:2]
            self._scanned = 0
        start = self._scanned - 3 if self._scanned > 3 else 0
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            self._check_incomplete(buf, start)
            return None
        self._scanned = 0
        self._start_checked = False
        line_end = buf.find(b"\r\n")
        if line_end > self._limits.max_line_size:
            self._line_too_long()
        if end + 4 > self._limits.max_head_size:
            raise HeaderTooLarge(f"message head larger than {self._limits.max_head_size} bytes")
        start_line = bytes(buf[:line_end])
        block = bytes(buf[line_end + 2 : end + 2]) if end > line_end else b""
        del buf[: end + 4]
        if b"\n" in start_line or b"\r" in start_line:
            raise (BareLF if b"\n" in start_line else BareCR)("bare line terminator in start line")
        return start_line, block

    def _check_incomplete(self, buf: bytearray, start: int) -> None:
        limits = self._limits
        scan_to = len(buf) - 1 if buf[-1:] == b"\r" else len(buf)
        m = _BARE_RE.search(buf, start, scan_to)
        if m is not None:
            if m.group() == b"\n":
                raise BareLF("bare LF used as a line terminator")
            raise BareCR("bare CR in message head")
        self._scanned = len(buf)
        # A line may hold max_line_size octets before its CRLF.
        line_end = buf.find(b"\r\n", 0, limits.max_line_size + 2)
        if line_end < 0:
            if len(buf) > limits.max_line_size + 1:
                self._line_too_long()
        elif not self._start_checked:
            self._check_start_line(bytes(buf[:line_end]))
            self._start_checked = True
        if len(buf) > limits.max_head_size:
            raise HeaderTooLarge(f"message head larger than {limits.max_head_size} bytes")

    def _check_start_line(self, line: bytes) -> None:
        """Judge a start line whose head is still arriving, as the whole head would be.

        Raises:
            BadStartLine, UnsupportedVersion, InvalidRequestTarget.
        """
        if self._is_request:
            method, target, _ = parse_request_line(line)
            check_request_target(method, target)
        else:
            parse_status_line(line)

    def _line_too_long(self) -> None:
        if self._is_request:
            raise URITooLong(f"request-line longer than {self._limits.max_line_size} bytes")
        raise HeaderTooLarge(f"status-line longer than {self._limits.max_line_size} bytes")


def parse_request_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """Return (method, target, version) of a request-line (RFC 9112 §3).

    Raises:
        BadStartLine, UnsupportedVersion.
    """
    m = _REQUEST_LINE_RE.fullmatch(line)
    if m is None:
        raise BadStartLine(f"malformed request-line {line[:60]!r}")
    method, target, major, minor = m.groups()
    return method, target, _version(major, minor)


def parse_status_line(line: bytes) -> tuple[bytes, int, bytes]:
    """Return (version, status, reason) of a status-line (RFC 9112 §4).

    A missing reason-phrase with or without its SP is accepted: it carries no
    meaning and many servers omit it.

    Raises:
        BadStartLine, UnsupportedVersion.
    """
    m = _STATUS_LINE_RE.fullmatch(line)
    if m is None:
        raise BadStartLine(f"malformed status-line {line[:60]!r}")
    major, minor, status, reason = m.groups()
    code = int(status)
    if code < 100:
        raise BadStartLine(f"invalid status code {code}")
    return _version(major, minor), code, reason or b""


#: The phases of :class:`ChunkedReader` (module constants, which compile to C constants).
_SIZE: Final = 0
_DATA: Final = 1
_CRLF: Final = 2
_TRAILER: Final = 3


class ChunkedReader:
    """Decode the chunked transfer coding incrementally (RFC 9112 §7.1).

    States: SIZE (expecting a chunk-size line), DATA (inside chunk data), CRLF
    (after chunk data), TRAILER (after the last chunk).
    """

    __slots__ = ("_left", "_limits", "_phase", "_total")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._phase = _SIZE
        self._left = 0
        self._total = 0

    def read(self, buf: bytearray, eof: bool) -> bytes | list[Field] | None:
        """Return data bytes, trailer fields (message complete), or None for NEED_DATA.

        Raises:
            InvalidChunk, ChunkExtensionTooLong, TrailerTooLarge, BodyTooLarge,
            IncompleteMessage, and field-section faults for the trailers.
        """
        if self._phase == _SIZE:  # Fast path: a plain size line and its whole chunk.
            m = _CHUNK_SIZE_CRLF_RE.match(buf)
            if m is not None:
                size = int(m[1], 16)
                start = m.end()
                if size:
                    stop = start + size
                    limit = self._limits.max_body_size
                    if buf.startswith(b"\r\n", stop) and (
                        limit is None or self._total + size <= limit
                    ):
                        self._total += size
                        data = bytes(buf[start:stop])
                        del buf[: stop + 2]
                        return data
                else:
                    trailers = self._read_last(buf, start)
                    if trailers is not None:
                        return trailers
        # Step by step (a partial chunk, extensions, or a fault to name): the
        # fast path changed nothing, so this starts from the same bytes.
        while True:
            phase = self._phase
            if phase == _DATA:
                if not buf:
                    break
                n = self._left
                if len(buf) <= n:
                    data = bytes(buf)
                    buf.clear()
                else:
                    data = bytes(buf[:n])
                    del buf[:n]
                self._left -= len(data)
                if self._left == 0:
                    self._phase = _CRLF
                return data
            if phase == _SIZE:
                if not self._read_size(buf):
                    break
            elif phase == _CRLF:
                if len(buf) < 2:
                    if buf and buf[:1] != b"\r":
                        raise InvalidChunk("chunk data not followed by CRLF")
                    break
                if buf[:2] != b"\r\n":
                    raise InvalidChunk("chunk data not followed by CRLF")
                del buf[:2]
                self._phase = _SIZE
            else:
                trailers = self._read_trailers(buf)
                if trailers is not None:
                    return trailers
                break
        if eof:
            raise IncompleteMessage("connection closed inside a chunked body")
        return None

    def _read_last(self, buf: bytearray, start: int) -> list[Field] | None:
        """Fast path for the last chunk (its ``0`` line ends at *start*) and the
        trailer section, when all of it is in *buf* and valid; else None."""
        limits = self._limits
        if buf.startswith(b"\r\n", start):
            del buf[: start + 2]
            self._phase = _TRAILER  # (as the step-by-step path leaves it)
            return []
        end = buf.find(b"\r\n\r\n", start)
        if end < 0 or end + 4 - start > limits.max_trailer_size:
            return None
        trailers = fast_fields(buf, start, end + 2, limits)
        if trailers is None:
            return None
        del buf[: end + 4]
        self._phase = _TRAILER
        return trailers

    def _read_size(self, buf: bytearray) -> bool:
        limits = self._limits
        idx = buf.find(b"\r\n")
        if 0 < idx <= _MAX_CHUNK_SIZE_DIGITS:
            # Fast path: a short line; valid only if it is all hex digits.
            line = bytes(buf[:idx])
            if _HEX_ONLY_RE.fullmatch(line) is not None:
                del buf[: idx + 2]
                return self._start_chunk(int(line, 16))
        # The same checks run on a partial line and on a complete one, so the
        # verdict does not depend on how the bytes were split.
        region = buf if idx < 0 else buf[:idx]
        hex_match = _HEX_PREFIX_RE.match(region)
        n_digits = hex_match.end() if hex_match is not None else 0
        if len(region[:n_digits].lstrip(b"0")) > _MAX_CHUNK_SIZE_DIGITS:
            raise InvalidChunk("chunk-size overflows 64 bits")
        if n_digits > _MAX_CHUNK_SIZE_DIGITS + limits.max_chunk_ext_size:
            raise InvalidChunk("chunk-size line too long")
        if len(region) - n_digits > limits.max_chunk_ext_size + 1:
            raise ChunkExtensionTooLong("chunk extensions too long")
        if b"\n" in region:
            raise BareLF("bare LF in chunk-size line")
        if idx < 0:
            return False
        line = bytes(buf[:idx])
        m = _CHUNK_LINE_RE.fullmatch(line)
        if m is None:
            raise InvalidChunk(f"malformed chunk-size line {line[:40]!r}")
        digits, ext = m.groups()
        if len(ext) > limits.max_chunk_ext_size:
            raise ChunkExtensionTooLong("chunk extensions too long")
        del buf[: idx + 2]
        return self._start_chunk(int(digits, 16))

    def _start_chunk(self, size: int) -> bool:
        limits = self._limits
        self._total += size
        if limits.max_body_size is not None and self._total > limits.max_body_size:
            raise BodyTooLarge(f"body larger than {limits.max_body_size} bytes")
        if size == 0:
            self._phase = _TRAILER
        else:
            self._left = size
            self._phase = _DATA
        return True

    def _read_trailers(self, buf: bytearray) -> list[Field] | None:
        limits = self._limits
        if buf[:2] == b"\r\n":
            del buf[:2]
            return []
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > limits.max_trailer_size:
                raise TrailerTooLarge(f"trailer section larger than {limits.max_trailer_size}")
            scan_to = len(buf) - 1 if buf[-1:] == b"\r" else len(buf)
            m = _BARE_RE.search(buf, 0, scan_to)
            if m is not None:
                raise (BareLF if m.group() == b"\n" else BareCR)("bare line end in trailers")
            return None
        if end + 4 > limits.max_trailer_size:
            raise TrailerTooLarge(f"trailer section larger than {limits.max_trailer_size}")
        block = bytes(buf[: end + 2])
        del buf[: end + 4]
        return parse_fields(block, limits, "trailer")
