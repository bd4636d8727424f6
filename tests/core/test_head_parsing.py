"""A head is parsed the same whichever way it arrives (RFC 9112 §2-§5; issue 2, speed).

The head parser's fast path either returns exactly what the slow path would, or
declines and lets the slow path run on the same bytes. These tests force both ways
on the same input:

- field blocks: :func:`fast_fields` against :func:`parse_fields` (hypothesis, with CR,
  LF, NUL, colons, OWS and obs-fold in the alphabet);
- heads: a message fed as is (fast) and after an empty line (``\\r\\n`` first makes the
  head parser take its slow path, RFC 9112 §2.2) and one byte at a time.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onehop.core import (
    NEED_DATA,
    PAUSED,
    Connection,
    Data,
    EndOfMessage,
    Event,
    Request,
    Role,
)
from onehop.core.reader import DEFAULT_LIMITS, Limits, fast_fields, parse_fields
from onehop.errors import ProtocolError

SETTINGS = settings(max_examples=400, deadline=None)

# Field-line pieces, valid and not: the block strategy glues them into lines.
_NAME_BITS = [b"Host", b"X-A", b"x", b"a b", b"", b"\x00", b"\xff", b"K:", b"\t"]
_VALUE_BITS = [b"v", b"", b" ", b"\t", b"a:b", b" x ", b"x\t", b"\r", b"\n", b"\x00", b"\x7f",
               b"\x80\xff", b"\"q\""]


@st.composite
def field_blocks(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(
        st.sampled_from([b"", b" ", b"\t"]),  # obs-fold
        st.sampled_from(_NAME_BITS),
        st.sampled_from([b":", b" :", b""]),
        st.lists(st.sampled_from(_VALUE_BITS), max_size=4).map(b"".join),
        st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"]),
    ), max_size=6))
    return b"".join(a + b + c + d + e for a, b, c, d, e in lines)


def _slow(block: bytes, limits: Limits) -> Any:
    try:
        return parse_fields(block, limits)
    except ProtocolError as exc:
        return type(exc)


@SETTINGS
@given(field_blocks())
def test_fast_fields_agree_with_parse_fields_or_decline(block: bytes) -> None:
    if block and not block.endswith(b"\r\n"):
        return  # (never called so: a block always ends at the CRLF before the empty line)
    # fast_fields runs on the receive buffer, just after the start line's CRLF.
    buf = bytearray(b"GET / HTTP/1.1\r\n" + block)
    fast = fast_fields(buf, 16, len(buf), DEFAULT_LIMITS)
    slow = _slow(block, DEFAULT_LIMITS)
    if fast is not None:
        assert fast == slow
    else:  # it declines only what the slow path refuses (these blocks are within limits)
        assert not isinstance(slow, list)


def test_fast_fields_leaves_limits_to_the_slow_path() -> None:
    block = b"A: 1\r\nB: 2\r\nC: 3\r\n"
    buf = bytearray(b"\n" + block)
    assert fast_fields(buf, 1, len(buf), Limits(max_fields=2)) is None
    assert fast_fields(buf, 1, len(buf), Limits(max_line_size=8)) is None
    assert fast_fields(buf, 1, len(buf), DEFAULT_LIMITS) == [
        (b"a", b"A", b"1"), (b"b", b"B", b"2"), (b"c", b"C", b"3")]


# --- whole messages: fast against slow -------------------------------------------------------

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nX-Trail: v  \r\nX-Tab: \tv\t\r\nAccept: */*\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nX-E: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: upgrade\r\n"
    b"Upgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nKeep-Alive: timeout=5\r\nX: \r\n\r\n",
    b"GET / HTTP/1.9\r\nHost: a\r\n\r\n",
    b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\nY-T: 2 \r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
    # faults: both ways must raise the same error
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET /#f HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX : 1\r\n\r\n",
]

RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 \r\nContent-Length: 2\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\nhi",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTrailer: X\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nhi\r\n0\r\nX: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
]


def _events(role: Role, pieces: list[bytes]) -> list[Any]:
    conn = Connection(role)
    if role is Role.CLIENT:
        conn.send(Request(b"GET", b"/", [(b"Host", b"a")]))
        conn.send(EndOfMessage())
    out: list[Any] = []
    try:
        for piece in [*pieces, b""]:
            conn.receive_data(piece)
            while True:
                ev = conn.next_event()
                if ev is NEED_DATA or ev is PAUSED:
                    break
                assert isinstance(ev, Event)
                out.append(ev)
                if isinstance(ev, EndOfMessage):
                    return _merged(out)
    except ProtocolError as exc:
        return [*_merged(out), type(exc)]
    return _merged(out)


def _merged(events: list[Any]) -> list[Any]:
    out: list[Any] = []
    for ev in events:
        if isinstance(ev, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + ev.data)
        else:
            out.append(ev)
    return out


@pytest.mark.parametrize(("role", "wire"), [(Role.SERVER, w) for w in REQUESTS]
                         + [(Role.CLIENT, w) for w in RESPONSES])
def test_fast_and_slow_paths_yield_the_same_events(role: Role, wire: bytes) -> None:
    fast = _events(role, [wire])
    assert fast == _events(role, [b"\r\n" + wire])  # leading CRLF: slow head path
    assert fast == _events(role, [wire[i:i + 1] for i in range(len(wire))])
