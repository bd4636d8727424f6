"""Differential test: onehop and h11 must read valid messages the same way.

Messages are generated valid under RFC 9110/9112 *and* inside the subset on which
h11 follows the RFC; each is parsed by h11 (fed at once) and by onehop (fed in
random pieces), and both must report the same start line, the same field lines
(name as received and value), the same content and the same trailers. h11 keeps
every field in ``headers``; onehop splits the hop-by-hop ones (the fixed set and
the ones ``Connection`` names) into ``connection.fields``, so h11's list is split
the same way before comparing, and the ``Connection`` options must match too.

Not generated, because h11 departs from the RFC there (h11 accepts, onehop rejects,
as RFC 9112/9110 require or allow):

- bare LF as a line terminator (h11 reads ``\\n``; onehop rejects, RFC 9112 §2.2);
- obs-fold (h11 unfolds; onehop rejects, RFC 9112 §5.2);
- CTLs other than HTAB in field values and the reason-phrase (h11 allows
  ``[^\\x00\\s]``; RFC 9110 §5.5 forbids them);
- request-targets whose form does not fit the method (h11 takes any ``VCHAR+``:
  ``*`` with GET, a ``#fragment``, CONNECT with origin-form; RFC 9112 §3.2);
- a Host value that is not ``uri-host [":" port]`` (h11 only counts Host lines);
- HTTP versions other than 1.0 and 1.1 (h11 reports ``2.0``/``1.2`` as received;
  onehop answers 505 for major != 1 and reads 1.x as 1.1, RFC 9110 §2.5);
- Transfer-Encoding together with Content-Length (h11 ignores Content-Length;
  onehop rejects, RFC 9112 §6.3 (3)) and Transfer-Encoding in an HTTP/1.0
  message (h11 decodes chunked; onehop rejects, RFC 9112 §6.1);
- chunk extensions outside the ``chunk-ext`` grammar and whitespace before the
  chunk-size line's CRLF (h11: ``;.*`` then OWS); chunk-sizes over 16 significant
  hex digits (h11 allows 20) and Content-Length over 18 digits (h11 allows 20).

Representation differences that are normalised or avoided, not disagreements:
h11 lower-cases the Transfer-Encoding value and folds repeated or list-form
identical Content-Length values into one line (one plain line is generated);
onehop's limits (100 fields, 8 KiB lines) and h11's (16 KiB head) are not reached.
Valid forms h11 rejects are avoided too: BWS before a chunk extension's ``;``, and
an empty line before the request-line (RFC 9112 §2.2: SHOULD be ignored).
"""

from __future__ import annotations

import itertools
from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onehop.core import (
    HOP_BY_HOP_FIELDS,
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    Role,
)

Pair = tuple[bytes, bytes]
#: One normalised event: a head, or the end of a message with its content.
Norm = tuple[Any, ...]

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- normalising both libraries' events -------------------------------------------------------


def _options(pairs: list[Pair]) -> frozenset[bytes]:
    return frozenset(
        m.strip(b" \t").lower()
        for name, value in pairs
        if name.lower() == b"connection"
        for m in value.split(b",")
        if m.strip(b" \t")
    )


def _split(pairs: list[Pair]) -> tuple[list[Pair], list[Pair], frozenset[bytes]]:
    """Split h11's field list as RFC 9110 §7.6.1 does: fixed set plus Connection options."""
    options = _options(pairs)
    hop = HOP_BY_HOP_FIELDS | options
    e2e = [(n, v) for n, v in pairs if n.lower() not in hop]
    conn = [(n, v) for n, v in pairs if n.lower() in hop]
    return e2e, conn, options


def _h11_pairs(headers: Any) -> list[Pair]:
    pairs = [(bytes(n), bytes(v)) for n, v in headers.raw_items()]
    # h11 lower-cases the Transfer-Encoding value; compare it case-insensitively.
    return [(n, v.lower() if n.lower() == b"transfer-encoding" else v) for n, v in pairs]


def _onehop_pairs(fields: Any) -> list[Pair]:
    return [(n, v.lower() if n.lower() == b"transfer-encoding" else v) for n, v in fields.raw()]


def norm_h11(events: list[Any]) -> list[Norm]:
    out: list[Norm] = []
    body = b""
    for ev in events:
        if isinstance(ev, h11.Request):
            e2e, conn, options = _split(_h11_pairs(ev.headers))
            out.append(("request", ev.method, ev.target, ev.http_version, e2e, conn, options))
            body = b""
        elif isinstance(ev, h11.InformationalResponse | h11.Response):
            e2e, conn, options = _split(_h11_pairs(ev.headers))
            kind = "response" if isinstance(ev, h11.Response) else "1xx"
            out.append((kind, ev.status_code, ev.reason, ev.http_version, e2e, conn, options))
            body = b""
        elif isinstance(ev, h11.Data):
            body += bytes(ev.data)
        elif isinstance(ev, h11.EndOfMessage):
            out.append(("end", body, _h11_pairs(ev.headers)))
    return out


def norm_onehop(events: list[Event]) -> list[Norm]:
    out: list[Norm] = []
    body = b""
    for ev in events:
        if isinstance(ev, Request):
            e2e = _onehop_pairs(ev.headers)
            conn = _onehop_pairs(ev.connection.fields)
            out.append(("request", ev.method, ev.target, ev.http_version, e2e, conn,
                        ev.connection.options))
            body = b""
        elif isinstance(ev, InformationalResponse | Response):
            e2e = _onehop_pairs(ev.headers)
            conn = _onehop_pairs(ev.connection.fields)
            kind = "response" if isinstance(ev, Response) else "1xx"
            out.append((kind, ev.status_code, ev.reason, ev.http_version, e2e, conn,
                        ev.connection.options))
            body = b""
        elif isinstance(ev, Data):
            body += ev.data
        elif isinstance(ev, EndOfMessage):
            out.append(("end", body, _onehop_pairs(ev.trailers)))
    return out


# --- driving both libraries -------------------------------------------------------------------


def read_h11(wire: bytes, *, server: bool, eof: bool) -> list[Norm]:
    conn = h11.Connection(h11.SERVER if server else h11.CLIENT)
    if not server:
        conn.send(h11.Request(method=b"GET", target=b"/", headers=[(b"Host", b"example.com")]))
        conn.send(h11.EndOfMessage())
    conn.receive_data(wire)
    if eof:
        conn.receive_data(b"")
    events: list[Any] = []
    while True:
        ev = conn.next_event()
        assert ev is not h11.NEED_DATA and ev is not h11.PAUSED, events
        events.append(ev)
        if isinstance(ev, h11.EndOfMessage):
            break
    assert conn.trailing_data == (b"", eof)
    return norm_h11(events)


def read_onehop(wire: bytes, cuts: list[int], *, server: bool, eof: bool) -> list[Norm]:
    conn = Connection(Role.SERVER if server else Role.CLIENT)
    if not server:
        conn.send(Request(b"GET", b"/", [(b"Host", b"example.com")]))
        conn.send(EndOfMessage())
    bounds = [0, *sorted(cuts), len(wire)]
    pieces = [wire[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    events: list[Event] = []
    done = False
    for piece in [*pieces, b""] if eof else pieces:
        conn.receive_data(piece)
        while not done:
            ev = conn.next_event()
            if ev is NEED_DATA:
                break
            assert ev is not PAUSED and not isinstance(ev, ConnectionClosed), events
            assert isinstance(ev, Event)
            events.append(ev)
            done = isinstance(ev, EndOfMessage)
    assert done, events
    assert conn.trailing_data == (b"", eof)
    return norm_onehop(events)


def check(wire: bytes, *, server: bool, eof: bool = False, cuts: list[int] | None = None) -> None:
    want = read_h11(wire, server=server, eof=eof)
    got = read_onehop(wire, cuts or [], server=server, eof=eof)
    assert got == want


# --- strategies -------------------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
OBS_TEXT = "".join(chr(c) for c in range(0x80, 0x100))
NOMINATED = b"X-Hop-Opt"  # a field a Connection line names
NOT_RANDOM = HOP_BY_HOP_FIELDS | {b"host", b"content-length", NOMINATED.lower()}


def _latin1(s: str) -> bytes:
    return s.encode("latin-1")


tokens = st.text(TCHAR, min_size=1, max_size=12).map(_latin1)
names = tokens.filter(lambda n: n.lower() not in NOT_RANDOM)
values = st.text(VCHAR + OBS_TEXT + " \t", max_size=30).map(lambda s: _latin1(s.strip(" \t")))
ows = st.sampled_from([b"", b" ", b"\t", b"  ", b" \t "])


@st.composite
def field_lines(draw: st.DrawFn, min_size: int = 0, max_size: int = 10) -> list[bytes]:
    """Field lines with random OWS around the value (stripped by both parsers)."""
    pairs = draw(st.lists(st.tuples(names, values), min_size=min_size, max_size=max_size))
    return [n + b":" + draw(ows) + v + draw(ows) for n, v in pairs]


@st.composite
def connection_lines(draw: st.DrawFn) -> list[bytes]:
    """Nothing, or Connection (with options in random case) and the fields it names."""
    kind = draw(st.sampled_from(["none", "keep-alive", "close", "nominated", "ka-params"]))
    if kind == "none":
        return []
    if kind == "keep-alive":
        return [b"Connection: " + draw(st.sampled_from([b"keep-alive", b"Keep-Alive"]))]
    if kind == "close":
        return [b"Connection: " + draw(st.sampled_from([b"close", b"Close", b" ,close ,"]))]
    if kind == "nominated":
        return [b"Connection: keep-alive, " + NOMINATED, NOMINATED + b": " + draw(values)]
    return [b"Keep-Alive: timeout=5, max=100", b"Connection: Keep-Alive"]


chunk_exts = st.lists(
    st.one_of(
        tokens.map(lambda t: b";" + t),
        st.tuples(tokens, tokens).map(lambda p: b";" + p[0] + b"=" + p[1]),
        st.tuples(tokens, st.text(VCHAR.replace('"', "").replace("\\", "") + " ", max_size=8))
        .map(lambda p: b";" + p[0] + b'="' + _latin1(p[1]) + b'"'),
    ),
    max_size=2,
).map(b"".join)


@st.composite
def bodies(draw: st.DrawFn, chunked_ok: bool, none_ok: bool = True) -> tuple[list[bytes], bytes]:
    """Return (framing field lines, encoded content)."""
    kinds = ["length"] + (["chunked"] if chunked_ok else []) + (["none"] if none_ok else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return [], b""
    if kind == "length":
        content = draw(st.binary(max_size=300))
        zeros = b"0" * draw(st.integers(0, 2))
        name = draw(st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH"]))
        return [name + b": " + zeros + b"%d" % len(content)], content
    chunks = draw(st.lists(st.binary(min_size=1, max_size=80), max_size=4))
    wire = b""
    for chunk in chunks:
        size = draw(st.sampled_from([b"%x", b"%X", b"0%x"])) % len(chunk)
        wire += size + draw(chunk_exts) + b"\r\n" + chunk + b"\r\n"
    wire += b"0" * draw(st.integers(1, 2)) + draw(chunk_exts) + b"\r\n"
    wire += b"".join(line + b"\r\n" for line in draw(field_lines(max_size=3))) + b"\r\n"
    te = draw(st.sampled_from([b"chunked", b"Chunked", b"CHUNKED"]))
    return [b"Transfer-Encoding: " + te], wire


def _head(start: bytes, lines: list[bytes]) -> bytes:
    return start + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


host_names = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~",
            min_size=1, max_size=20),
    st.sampled_from(["127.0.0.1", "[::1]", "[2001:db8::7]", "xn--bcher-kva.example"]),
).map(_latin1)
hosts = st.tuples(host_names, st.sampled_from([b"", b":80", b":8080", b":"])).map(b"".join)

origin_targets = st.text(VCHAR.replace("#", ""), max_size=40).map(lambda s: _latin1("/" + s))
methods = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS"]),
    tokens.filter(lambda m: m != b"CONNECT"),
)
request_lines = st.one_of(
    st.tuples(methods, origin_targets),
    st.tuples(
        methods,
        st.tuples(st.sampled_from([b"http://", b"https://", b"coap+tcp://"]), hosts,
                  origin_targets).map(b"".join),
    ),
    st.tuples(st.just(b"OPTIONS"), st.just(b"*")),
    st.tuples(
        st.just(b"CONNECT"),
        st.tuples(host_names, st.integers(1, 65535)).map(lambda p: p[0] + b":%d" % p[1]),
    ),
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method, target = draw(request_lines)
    version = draw(st.sampled_from([b"1.1", b"1.0"]))
    framing, content = draw(bodies(chunked_ok=version == b"1.1"))
    if method == b"CONNECT":
        framing, content = [], b""
    lines = [*draw(field_lines()), *draw(connection_lines()), *framing]
    if version == b"1.1" or draw(st.booleans()):
        lines.append(b"Host: " + draw(hosts))
    lines = draw(st.permutations(lines))
    return _head(method + b" " + target + b" HTTP/" + version, lines) + content


reasons = st.one_of(
    st.sampled_from([b"OK", b"Not Found", b"", b"Internal Server Error"]),
    st.text(VCHAR + OBS_TEXT + " \t", max_size=20).map(_latin1),
)


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Return (wire, whether the content runs until EOF)."""
    version = draw(st.sampled_from([b"1.1", b"1.0"]))
    wire = b""
    if version == b"1.1":
        for status in draw(st.lists(st.sampled_from([100, 102, 103]), max_size=2)):
            line = b"HTTP/1.1 %d" % status + draw(st.sampled_from([b"", b" ", b" Early Hints"]))
            wire += _head(line, draw(field_lines(max_size=3)))
    status = draw(st.one_of(st.integers(200, 599), st.sampled_from([200, 204, 304, 404])))
    reason = draw(reasons)
    start = b"HTTP/" + version + b" %d" % status + (b" " + reason if reason or
                                                    draw(st.booleans()) else b"")
    framing: list[bytes] = []
    content, eof = b"", False
    if status not in (204, 304):
        framing, content = draw(bodies(chunked_ok=version == b"1.1"))
        eof = not framing  # no framing fields: the content runs until the connection closes
    lines = [*draw(field_lines()), *draw(connection_lines()), *framing]
    lines = draw(st.permutations(lines))
    return wire + _head(start, lines) + content, eof


def _cuts(data: st.DataObject, wire: bytes) -> list[int]:
    return data.draw(st.lists(st.integers(0, len(wire)), max_size=6), label="cuts")


# --- tests ------------------------------------------------------------------------------------


@SETTINGS
@given(requests(), st.data())
def test_requests_read_like_h11(wire: bytes, data: st.DataObject) -> None:
    check(wire, server=True, cuts=_cuts(data, wire))


@SETTINGS
@given(responses(), st.data())
def test_responses_read_like_h11(message: tuple[bytes, bool], data: st.DataObject) -> None:
    wire, eof = message
    check(wire, server=False, eof=eof, cuts=_cuts(data, wire))


BROWSER_GET = (
    b"GET /products/widgets?page=2&sort=price HTTP/1.1\r\n"
    b"Host: shop.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Cookie: session=8f14e45f; theme=dark\r\n"
    b"Connection: keep-alive\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"\r\n"
)

FIXED_REQUESTS = [
    BROWSER_GET,
    b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /x HTTP/1.1\r\nHost: a:8080\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;name=value;flag\r\nhello\r\n0A\r\n0123456789\r\n0\r\nDigest: sha-256=:x:\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'3;q="a\\"b c"; x =\ty\r\nabc\r\n0\r\n\r\n',  # quoted-pair and BWS in chunk-ext
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    b"GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\nX-Empty:\r\nX-Tab:\ta\tb\t\r\nX-Obs: caf\xe9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-foo, close\r\nX-Foo: 1\r\nX-Bar: 2\r\n\r\n",
]

FIXED_RESPONSES = [
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Server-Timing\r\n\r\n"
     b"3\r\nabc\r\n0\r\nServer-Timing: db;dur=53\r\n\r\n", False),
    (b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", False),
    (b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n", False),
    (b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", False),
    (b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil close", True),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close", True),
    (b"HTTP/1.1 500 Server \xe9rror\r\nContent-Length: 0\r\n\r\n", False),
]


@pytest.mark.parametrize("wire", FIXED_REQUESTS)
def test_fixed_requests_read_like_h11(wire: bytes) -> None:
    check(wire, server=True)
    check(wire, server=True, cuts=list(range(len(wire))))  # one byte at a time


@pytest.mark.parametrize(("wire", "eof"), FIXED_RESPONSES)
def test_fixed_responses_read_like_h11(wire: bytes, eof: bool) -> None:
    check(wire, server=False, eof=eof)
    check(wire, server=False, eof=eof, cuts=list(range(len(wire))))
