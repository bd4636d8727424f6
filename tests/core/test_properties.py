"""Property-based tests of the sans-IO engine (hypothesis).

- Segmentation: a valid message parses to the same events however it is split into reads.
- Robustness: mutated messages raise only ``ProtocolError`` subclasses and never hang.
- Persistence: RFC 9112 §9.3 (``close``, HTTP/1.1 default, HTTP/1.0 keep-alive, proxies).
- Segregation: RFC 9110 §7.6.1 (fields named in Connection are hop-by-hop; end-to-end
  fields keep their raw name case and order).
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from onehop.core import (
    HOP_BY_HOP_FIELDS,
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    ConnectionInfo,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    Role,
    reason_phrase,
)
from onehop.errors import ProtocolError

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Field-value octets (RFC 9110 §5.5): VCHAR, obs-text, SP, HTAB.
VALUE_CHARS = "\t " + "".join(map(chr, range(0x21, 0x7F))) + "".join(map(chr, range(0x80, 0x100)))
#: Origin-form path and query octets, kept to VCHAR without "#" (RFC 9112 §3.2.1).
TARGET_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "#")
HOST_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
#: Names our generated end-to-end fields must avoid: framing, Host, and the hop-by-hop set.
# "close" is a reserved field name (RFC 9110 §18.4): the writer refuses it.
RESERVED = HOP_BY_HOP_FIELDS | {b"host", b"content-length", b"transfer-encoding", b"close"}

tokens = st.text(alphabet=TCHAR, min_size=1, max_size=10).map(str.encode)
values = st.text(alphabet=VALUE_CHARS, max_size=20).map(
    lambda s: s.encode("latin-1").strip(b" \t")
)
field_names = tokens.filter(lambda n: n.lower() not in RESERVED)
bodies = st.lists(st.binary(max_size=40), max_size=4)


@st.composite
def random_case(draw: st.DrawFn, name: bytes) -> bytes:
    """*name* with each letter's case chosen at random."""
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return bytes(
        c ^ 0x20 if flip and chr(c).isalpha() else c for c, flip in zip(name, flips, strict=True)
    )


@st.composite
def e2e_fields(draw: st.DrawFn, max_size: int = 6) -> list[tuple[bytes, bytes]]:
    names = draw(st.lists(field_names, max_size=max_size))
    return [(draw(random_case(n)), draw(values)) for n in names]


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split *data* at *cuts*; never yields b"" (which would mean EOF)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _collect(conn: Connection, pieces: list[bytes], *, eof: bool) -> list[Event]:
    """Feed *pieces* (then EOF) and collect events; bounded so a hang fails the test."""
    out: list[Event] = []
    feeds: list[bytes | None] = [*pieces, b""] if eof else [*pieces] or [None]
    for piece in feeds:  # None: only drain what is already buffered
        if piece is not None:
            conn.receive_data(piece)
        piece = piece or b""
        budget = len(piece) + conn.buffered + 16  # events a piece can release, at most
        while True:
            budget -= 1
            assert budget > 0, "next_event() never asked for data"
            event = conn.next_event()
            if event is NEED_DATA or event is PAUSED:
                break
            assert isinstance(event, Event)
            out.append(event)
            if isinstance(event, ConnectionClosed):
                break
    return out


def _norm(evs: list[Event]) -> list[tuple[Any, ...]]:
    """Events as comparable tuples, raw name case included, adjacent Data merged."""
    out: list[tuple[Any, ...]] = []
    for e in evs:
        if isinstance(e, Data):
            if out and out[-1][0] == "Data":
                out[-1] = ("Data", out[-1][1] + e.data)
            else:
                out.append(("Data", e.data))
        elif isinstance(e, Request):
            out.append(("Request", e.method, e.target, e.http_version, e.headers.raw(),
                        e.connection.options, e.connection.fields.raw()))
        elif isinstance(e, Response | InformationalResponse):
            out.append((type(e).__name__, e.status_code, e.reason, e.http_version,
                        e.headers.raw(), e.connection.options, e.connection.fields.raw()))
        elif isinstance(e, EndOfMessage):
            out.append(("EndOfMessage", e.trailers.raw()))
        else:
            out.append((type(e).__name__,))
    return out


# --- valid messages -----------------------------------------------------------------------


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[Event], bytes]:
    """A valid request as the events a client sends, and the bytes it writes."""
    version = draw(st.sampled_from([b"1.0", b"1.1"]))
    method = draw(tokens.filter(lambda m: m != b"CONNECT"))
    target = b"/" + draw(st.text(alphabet=TARGET_CHARS, max_size=30)).encode()
    headers = draw(e2e_fields())
    if version == b"1.1" or draw(st.booleans()):
        host = draw(st.text(alphabet=HOST_CHARS, max_size=15)).encode()
        if draw(st.booleans()):
            host += b":%d" % draw(st.integers(0, 65535))
        at = draw(st.integers(0, len(headers)))
        headers.insert(at, (draw(random_case(b"Host")), host))
    kind = draw(st.sampled_from(["none", "length", "chunked"] if version == b"1.1"
                                else ["none", "length"]))
    body = draw(bodies) if kind != "none" else []
    conn = ConnectionInfo()
    trailers: list[tuple[bytes, bytes]] = []
    if kind == "length":
        headers.append((draw(random_case(b"Content-Length")), b"%d" % sum(map(len, body))))
    elif kind == "chunked":
        conn = ConnectionInfo(fields=[(b"Transfer-Encoding", b"chunked")])
        trailers = draw(e2e_fields(max_size=3))
    sent: list[Event] = [Request(method, target, headers, conn, version)]
    sent += [Data(b) for b in body]
    sent.append(EndOfMessage(trailers))
    client = Connection(Role.CLIENT)
    wire = b"".join(client.send(e) for e in sent)
    return sent, wire


@st.composite
def responses(draw: st.DrawFn) -> tuple[Request, list[Event], bytes]:
    """A request, a valid response to it as events, and the bytes a server writes."""
    version = draw(st.sampled_from([b"1.0", b"1.1"]))
    method = draw(st.sampled_from([b"GET", b"POST", b"HEAD"]))
    request = Request(method, b"/", [(b"Host", b"example.com")], http_version=version)
    status = draw(st.integers(200, 599))
    reason = draw(st.text(alphabet=VALUE_CHARS, max_size=20)).encode("latin-1")
    headers = draw(e2e_fields())
    no_body = method == b"HEAD" or status in (204, 304)
    body = [] if no_body else draw(bodies)
    trailers: list[tuple[bytes, bytes]] = []
    if status != 204 and draw(st.booleans()):
        length = sum(map(len, body)) if not no_body else draw(st.integers(0, 10**6))
        headers.append((draw(random_case(b"Content-Length")), b"%d" % length))
    elif version == b"1.1" and not no_body:
        trailers = draw(e2e_fields(max_size=3))  # the server chunks: no length, 1.1 peer
    sent: list[Event] = []
    if version == b"1.1":  # RFC 9110 §15.2: never a 1xx to an HTTP/1.0 client
        for code in draw(st.lists(st.sampled_from([100, 102, 103, 150, 199]), max_size=2)):
            sent.append(InformationalResponse(code, draw(e2e_fields(max_size=2))))
    sent.append(Response(status, headers, reason))
    sent += [Data(b) for b in body]
    sent.append(EndOfMessage(trailers))
    server = Connection(Role.SERVER)
    client = Connection(Role.CLIENT)
    server.receive_data(client.send(request) + client.send(EndOfMessage()))
    assert isinstance(server.next_event(), Request)
    assert isinstance(server.next_event(), EndOfMessage)
    wire = b"".join(server.send(e) for e in sent)
    return request, sent, wire


def _client_awaiting(request: Request) -> Connection:
    client = Connection(Role.CLIENT)
    client.send(request)
    client.send(EndOfMessage())
    return client


@SETTINGS
@given(msg=requests(), data=st.data())
def test_request_parses_the_same_however_it_is_split(
    msg: tuple[list[Event], bytes], data: st.DataObject
) -> None:
    sent, wire = msg
    whole = _norm(_collect(Connection(Role.SERVER), [wire], eof=False))
    pieces = data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=12).map(
        lambda cuts: _pieces(wire, cuts)))
    assert _norm(_collect(Connection(Role.SERVER), pieces, eof=False)) == whole
    one_byte = [wire[i : i + 1] for i in range(len(wire))]
    assert _norm(_collect(Connection(Role.SERVER), one_byte, eof=False)) == whole
    # ... and what is parsed is what was sent.
    request = sent[0]
    assert isinstance(request, Request)
    assert whole[0][:5] == ("Request", request.method, request.target, request.http_version,
                            request.headers.raw())
    body = b"".join(e.data for e in sent if isinstance(e, Data))
    assert whole[1:] == ([("Data", body)] if body else []) + [("EndOfMessage",
                                                                sent[-1].trailers.raw())]


@SETTINGS
@given(msg=responses(), data=st.data())
def test_response_parses_the_same_however_it_is_split(
    msg: tuple[Request, list[Event], bytes], data: st.DataObject
) -> None:
    request, sent, wire = msg
    whole = _norm(_collect(_client_awaiting(request), [wire], eof=True))
    pieces = data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=12).map(
        lambda cuts: _pieces(wire, cuts)))
    assert _norm(_collect(_client_awaiting(request), pieces, eof=True)) == whole
    one_byte = [wire[i : i + 1] for i in range(len(wire))]
    assert _norm(_collect(_client_awaiting(request), one_byte, eof=True)) == whole
    heads = [e for e in sent if isinstance(e, Response | InformationalResponse)]
    assert [w[:2] for w in whole[: len(heads)]] == [
        (type(e).__name__, e.status_code) for e in heads
    ]
    assert [w[4] for w in whole[: len(heads)]] == [e.headers.raw() for e in heads]
    assert [w[2] for w in whole[: len(heads)]] == [
        e.reason or reason_phrase(e.status_code) for e in heads
    ]
    body = b"".join(e.data for e in sent if isinstance(e, Data))
    assert whole[len(heads) :] == ([("Data", body)] if body else []) + [
        ("EndOfMessage", sent[-1].trailers.raw()), ("ConnectionClosed",)
    ]


def test_field_named_close_is_refused_or_delivered_end_to_end() -> None:
    """Found by the property above: a response header ``Close`` sent to an HTTP/1.0 client.

    The writer adds ``Connection: close`` itself, which turns the caller's end-to-end
    ``Close`` field into a hop-by-hop one on the way (RFC 9110 §7.6.1; "Close" is a
    reserved field name, RFC 9110 §18.4). Either refusing to send it or delivering it
    end-to-end is consistent; silently changing its meaning is not.
    """
    request = Request(b"GET", b"/", [(b"Host", b"example.com")], http_version=b"1.0")
    server = Connection(Role.SERVER)
    server.receive_data(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n")
    assert isinstance(server.next_event(), Request)
    assert isinstance(server.next_event(), EndOfMessage)
    try:
        wire = server.send(Response(200, [(b"Close", b"")])) + server.send(EndOfMessage())
    except ProtocolError:
        return  # refused: consistent
    evs = _collect(_client_awaiting(request), [wire], eof=True)
    assert isinstance(evs[0], Response)
    assert evs[0].headers.raw() == [(b"Close", b"")], wire


# --- mutated messages ---------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, wire: bytes) -> bytes:
    """*wire* after 1-6 random byte replacements, insertions and deletions."""
    buf = bytearray(wire)
    interesting = st.sampled_from(b"\r\n\t :;,\x00\x7f0aF-+\"")
    octet = st.one_of(interesting, st.integers(0, 255))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        at = draw(st.integers(0, len(buf)))
        if op == "insert":
            buf[at:at] = bytes(draw(st.lists(octet, min_size=1, max_size=3)))
        elif buf and at < len(buf):
            if op == "replace":
                buf[at] = draw(octet)
            else:
                del buf[at : at + draw(st.integers(1, 4))]
    return bytes(buf)


def _pump_robustly(conn: Connection, pieces: list[bytes]) -> None:
    """Feed *pieces* then EOF, answering each request; only ProtocolError may escape.

    Bounded: a hang (no progress without asking for data, or NEED_DATA after EOF,
    which would make a caller wait forever) fails the test.
    """
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        budget = 2 * (len(piece) + conn.buffered) + 16
        while True:
            budget -= 1
            assert budget > 0, "no progress: next_event() loops"
            event = conn.next_event()
            if event is NEED_DATA:
                assert piece, "NEED_DATA after EOF: the caller would wait forever"
                break
            if event is PAUSED:
                if conn.role is Role.SERVER and conn.current_request is not None and (
                    conn.our_state.name == "IDLE"
                ):
                    conn.send(Response(404, [(b"Content-Length", b"0")]))
                    conn.send(EndOfMessage())
                    continue
                break
            if isinstance(event, ConnectionClosed):
                return


@SETTINGS
@given(msgs=st.lists(requests(), min_size=1, max_size=2), data=st.data())
def test_mutated_requests_raise_only_protocol_errors(
    msgs: list[tuple[list[Event], bytes]], data: st.DataObject
) -> None:
    wire = data.draw(mutated(b"".join(w for _, w in msgs)))
    pieces = data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=8).map(
        lambda cuts: _pieces(wire, cuts))) if wire else []
    with contextlib.suppress(ProtocolError):
        _pump_robustly(Connection(Role.SERVER), pieces)


@SETTINGS
@given(msg=responses(), data=st.data())
def test_mutated_responses_raise_only_protocol_errors(
    msg: tuple[Request, list[Event], bytes], data: st.DataObject
) -> None:
    request, _, wire = msg
    wire = data.draw(mutated(wire))
    pieces = data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=8).map(
        lambda cuts: _pieces(wire, cuts))) if wire else []
    with contextlib.suppress(ProtocolError):
        _pump_robustly(_client_awaiting(request), pieces)


# --- persistence (RFC 9112 §9.3) ------------------------------------------------------------

OPTION_POOL = [b"keep-alive", b"x-trace", b"te", b"trailer", b"x-a", b"foo"]
SEPARATORS = [b",", b", ", b" ,", b" , ", b",,", b", ,\t", b"\t,"]


@st.composite
def connection_lines(
    draw: st.DrawFn, options: list[bytes], min_lines: int = 1
) -> list[bytes]:
    """Spread *options* (random case, list syntax with OWS and empty elements) over lines."""
    n = draw(st.integers(max(min_lines, 1 if options else 0), 3))
    if n == 0:
        return []
    lines: list[list[bytes]] = [[] for _ in range(n)]
    for option in options:
        lines[draw(st.integers(0, n - 1))].append(draw(random_case(option)))
    out = []
    for members in lines:
        members = draw(st.permutations(members)) if members else members
        seps = [draw(st.sampled_from(SEPARATORS)) for _ in members]
        value = b"".join(m + s for m, s in zip(members, seps, strict=True))
        if draw(st.booleans()):
            value = draw(st.sampled_from([b",", b" , ", b"\t"])) + value
        out.append(draw(random_case(b"Connection")) + b":" + draw(st.sampled_from(
            [b"", b" ", b"\t "])) + value.strip(b" \t"))
    return out


@st.composite
def persistence_cases(draw: st.DrawFn, *, close: bool) -> tuple[bytes, bytes, bool, bool]:
    """(request bytes, HTTP version, has keep-alive, intermediary)."""
    version = draw(st.sampled_from([b"1.0", b"1.1"]))
    options = draw(st.lists(st.sampled_from(OPTION_POOL), unique=True, max_size=4))
    if close:
        options.insert(draw(st.integers(0, len(options))), b"close")
    lines = draw(connection_lines(options, min_lines=1 if close else 0))
    others = [n + b": " + v for n, v in draw(e2e_fields(max_size=3))]
    for line in lines:
        others.insert(draw(st.integers(0, len(others))), line)
    body = draw(st.binary(max_size=20))
    head = [b"POST /p HTTP/" + version, b"Host: example.com", *others]
    if body or draw(st.booleans()):
        head.append(b"Content-Length: %d" % len(body))
    request = b"\r\n".join(head) + b"\r\n\r\n" + body
    return request, version, b"keep-alive" in options, draw(st.booleans())


NEXT_REQUEST = b"GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n"


def _connection_tokens(head: bytes) -> set[bytes]:
    tokens: set[bytes] = set()
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"connection":
            tokens |= {t.strip(b" \t").lower() for t in value.split(b",") if t.strip(b" \t")}
    return tokens


def _serve(case: tuple[bytes, bytes, bool, bool]) -> tuple[Connection, bytes, list[Event]]:
    """Feed the request plus a pipelined one; answer the first; return what follows."""
    request, _, _, intermediary = case
    server = Connection(Role.SERVER, intermediary=intermediary)
    first = _collect(server, [request + NEXT_REQUEST], eof=False)
    assert isinstance(first[0], Request)
    assert isinstance(first[-1], EndOfMessage)
    head = server.send(Response(200, [(b"Content-Length", b"2")]))
    head += server.send(Data(b"ok")) + server.send(EndOfMessage())
    return server, head, _collect(server, [], eof=False)


CLOSE_IN_SECOND_LINE = (
    b"POST /p HTTP/1.1\r\nHost: example.com\r\nConnection: x-a\r\nX: 1\r\n"
    b"connection: foo ,, CLOSE\t,\r\nContent-Length: 3\r\n\r\nabc"
)
CLOSE_AND_KEEP_ALIVE_10 = (
    b"POST /p HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive, cLoSe\r\n\r\n"
)
KEEP_ALIVE_10 = b"POST /p HTTP/1.0\r\nHost: example.com\r\nConnection: Keep-Alive\r\n\r\n"
PLAIN_10 = b"POST /p HTTP/1.0\r\nHost: example.com\r\n\r\n"
PLAIN_11 = b"POST /p HTTP/1.1\r\nHost: example.com\r\n\r\n"


@SETTINGS
@given(case=persistence_cases(close=True))
@example(case=(CLOSE_IN_SECOND_LINE, b"1.1", False, False))
@example(case=(CLOSE_AND_KEEP_ALIVE_10, b"1.0", True, False))
def test_close_anywhere_ends_persistence(case: tuple[bytes, bytes, bool, bool]) -> None:
    server, head, after = _serve(case)
    assert b"close" in _connection_tokens(head.split(b"\r\n\r\n")[0])
    assert not server.keep_alive
    assert server.must_close
    assert after == [], "a request after `close` was parsed (RFC 9112 §9.6)"
    # Even when the peer then closes, the pipelined request stays unparsed.
    assert not any(isinstance(e, Request) for e in _collect(server, [], eof=True))


@SETTINGS
@given(case=persistence_cases(close=False))
@example(case=(KEEP_ALIVE_10, b"1.0", True, False))  # HTTP/1.0 keep-alive persists ...
@example(case=(KEEP_ALIVE_10, b"1.0", True, True))  # ... but never through a proxy
@example(case=(PLAIN_10, b"1.0", False, False))
@example(case=(PLAIN_11, b"1.1", False, True))
def test_persistence_without_close(case: tuple[bytes, bytes, bool, bool]) -> None:
    _, version, keep_alive, intermediary = case
    expected = version == b"1.1" or (keep_alive and not intermediary)
    server, head, after = _serve(case)
    tokens = _connection_tokens(head.split(b"\r\n\r\n")[0])
    assert server.keep_alive is expected
    if expected:
        assert b"close" not in tokens
        assert len(after) >= 1 and isinstance(after[0], Request)
        assert after[0].target == b"/next"
        if version == b"1.0":
            assert b"keep-alive" in tokens  # RFC 7230 §A.1.2: say so to a 1.0 client
    else:
        assert b"close" in tokens
        assert after == []


@SETTINGS
@given(data=st.data())
def test_close_in_a_response_ends_client_persistence(data: st.DataObject) -> None:
    options = data.draw(st.lists(st.sampled_from(OPTION_POOL), unique=True, max_size=4))
    options.insert(data.draw(st.integers(0, len(options))), b"close")
    lines = data.draw(connection_lines(options))
    wire = b"\r\n".join([b"HTTP/1.1 200 OK", *lines, b"Content-Length: 0"]) + b"\r\n\r\n"
    client = _client_awaiting(Request(b"GET", b"/", [(b"Host", b"example.com")]))
    evs = _collect(client, [wire], eof=False)
    assert [type(e) for e in evs] == [Response, EndOfMessage]
    assert not client.keep_alive
    assert not client.can_send_request


# --- hop-by-hop segregation (RFC 9110 §7.6.1) -----------------------------------------------

FIXED_HOP = [b"keep-alive", b"te", b"trailer", b"upgrade", b"proxy-authorization",
             b"proxy-connection", b"proxy-authenticate"]


@st.composite
def segregation_cases(draw: st.DrawFn) -> tuple[Role, bytes, list[tuple[bytes, bytes]]]:
    """(role that parses, message bytes, the fields in order as (raw name, value))."""
    names = draw(st.lists(st.one_of(field_names, st.sampled_from(FIXED_HOP)), max_size=10))
    fields = [(draw(random_case(n)), draw(values)) for n in names]
    nominated = draw(st.lists(st.one_of(st.sampled_from(names or [b"x-none"]), field_names),
                              max_size=4))
    for line in draw(connection_lines(nominated, min_lines=0)):
        name, _, value = line.partition(b":")
        fields.insert(draw(st.integers(0, len(fields))), (name, value.strip(b" \t")))
    role = draw(st.sampled_from([Role.SERVER, Role.CLIENT]))
    if role is Role.SERVER:
        fields.insert(draw(st.integers(0, len(fields))), (b"Host", b"example.com"))
        start = b"GET / HTTP/1.1"
    else:
        start = b"HTTP/1.1 200 OK"
        fields.append((b"Content-Length", b"0"))
    wire = b"\r\n".join([start, *(n + b": " + v for n, v in fields)]) + b"\r\n\r\n"
    return role, wire, fields


@SETTINGS
@given(case=segregation_cases())
def test_fields_named_in_connection_are_never_end_to_end(
    case: tuple[Role, bytes, list[tuple[bytes, bytes]]]
) -> None:
    role, wire, fields = case
    if role is Role.SERVER:
        conn = Connection(Role.SERVER)
    else:
        conn = _client_awaiting(Request(b"GET", b"/", [(b"Host", b"example.com")]))
    head = _collect(conn, [wire], eof=False)[0]
    assert isinstance(head, Request | Response)
    options = {
        t.strip(b" \t").lower()
        for n, v in fields if n.lower() == b"connection"
        for t in v.split(b",") if t.strip(b" \t")
    }
    assert head.connection.options == options
    hop = HOP_BY_HOP_FIELDS | options
    for name in options:
        assert name not in head.headers
    assert head.headers.raw() == [(n, v) for n, v in fields if n.lower() not in hop]
    assert head.connection.fields.raw() == [(n, v) for n, v in fields if n.lower() in hop]
