"""Throughput of onehop's sans-I/O core against h11 and httptools (parse side only).

Run from the repository root with the dev environment::

    python benchmarks/core.py            # ~1.5 s of timed work per measurement
    python benchmarks/core.py --quick    # smoke run, a few seconds in all
    python benchmarks/core.py --json     # results as JSON on stdout
    valgrind --tool=callgrind python benchmarks/core.py --untimed 1000 --only get
                                         # instructions, repeatable on a busy machine
    python benchmarks/core.py --compiled-venv /tmp/vc
                                         # also onehop compiled (mypyc), from the venv
                                         # made by: python -m venv /tmp/vc &&
                                         # ONEHOP_COMPILE=1 /tmp/vc/bin/pip install .

With ``--compiled-venv`` (or ``ONEHOP_COMPILED_VENV``) each row also times the compiled
build: that venv's Python runs the same onehop cases in a child process right after the
row's in-process libraries (it cannot share a process with the pure build: the module
names are the same), with the same time budget and repeats. This process must run the
pure build (``PYTHONPATH=src``), the child the compiled one; both are checked.

The mix:

- ``get``: a browser GET with 12 field lines (server parses; client serializes)
- ``post``: a POST with a 4 KiB Content-Length body (server parses; client serializes)
- ``chunked``: a chunked response, 3 chunks and 2 trailer fields (client parses;
  server serializes)
- ``response``: a 200 with 5 fields and a small body (client parses; server serializes)
- ``pipelined``: 3 GETs in one buffer; the server parses one, answers it with
  ``response``, parses the next. ``parse`` times the parsing only (answering is
  untimed); ``cycle`` times parsing and answering.

Method: each iteration builds its connection or parser untimed (so construction
cost is excluded for every library), then times only the library calls with
``time.perf_counter``; the clock's own cost is calibrated and subtracted. GC is
off while timing (as in ``timeit``). Each measurement is the best of several
repeats; the libraries of a row take their repeats in turn, so that a change in
the machine's load hits them alike. Serializing runs on one persistent
connection; the peer's message that lets the next one be sent is fed untimed
(h11's ``start_next_cycle`` is untimed too, which favours h11). httptools header
names are lower-cased in the callback, as uvicorn does, so all three deliver the
same data. Before timing, every
library's result is checked to be the same message.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import h11
import httptools

import onehop
from onehop.core import (
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionInfo,
    Data,
    EndOfMessage,
    Request,
    Response,
    Role,
)

pc = time.perf_counter

# --- messages -------------------------------------------------------------------------------

Fields = list[tuple[bytes, bytes]]


def _head(start: bytes, fields: Fields) -> bytes:
    return b"".join([start, b"\r\n", *(b"%s: %s\r\n" % f for f in fields), b"\r\n"])


GET_TARGET = b"/products/widgets?page=2&sort=price"
GET_FIELDS: Fields = [
    (b"Host", b"shop.example.com"),
    (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"Accept-Language", b"en-US,en;q=0.5"),
    (b"Accept-Encoding", b"gzip, deflate, br, zstd"),
    (b"Referer", b"https://shop.example.com/products"),
    (b"Cookie", b"session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; consent=1"),
    (b"Upgrade-Insecure-Requests", b"1"),
    (b"Sec-Fetch-Dest", b"document"),
    (b"Sec-Fetch-Mode", b"navigate"),
    (b"Sec-Fetch-Site", b"same-origin"),
]
#: Browsers send ``Connection: keep-alive``; it is hop-by-hop, so it is on the
#: wire for parsing but not among the fields a client passes to serialize.
GET_WIRE = _head(b"GET " + GET_TARGET + b" HTTP/1.1", [*GET_FIELDS, (b"Connection", b"keep-alive")])

POST_TARGET = b"/api/v1/orders"
POST_BODY = bytes(range(32, 96)) * 64  # 4096 bytes
POST_FIELDS: Fields = [
    (b"Host", b"api.example.com"),
    (b"User-Agent", b"python-httpx/0.27.0"),
    (b"Accept", b"application/json"),
    (b"Accept-Encoding", b"gzip, deflate"),
    (b"Content-Type", b"application/json"),
    (b"Authorization", b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl"),
    (b"Content-Length", b"%d" % len(POST_BODY)),
]
POST_WIRE = _head(b"POST " + POST_TARGET + b" HTTP/1.1", POST_FIELDS) + POST_BODY

RESPONSE_BODY = b'{"status":"ok","items":[]}\n'
RESPONSE_FIELDS: Fields = [
    (b"Date", b"Mon, 01 Jul 2024 12:00:00 GMT"),
    (b"Server", b"onehop"),
    (b"Content-Type", b"application/json"),
    (b"Content-Length", b"%d" % len(RESPONSE_BODY)),
    (b"Cache-Control", b"no-store"),
]
RESPONSE_WIRE = _head(b"HTTP/1.1 200 OK", RESPONSE_FIELDS) + RESPONSE_BODY

CHUNKS = [b"a" * 100, b"b" * 700, b"c" * 1500]
CHUNKED_FIELDS: Fields = [
    (b"Date", b"Mon, 01 Jul 2024 12:00:00 GMT"),
    (b"Server", b"onehop"),
    (b"Content-Type", b"text/plain; charset=utf-8"),
    (b"Cache-Control", b"no-cache"),
]
#: ``Trailer`` announces the trailer fields; onehop treats it as connection-specific.
TRAILER_ANNOUNCE = (b"Trailer", b"Server-Timing, ETag")
TRAILERS: Fields = [(b"Server-Timing", b"db;dur=53, app;dur=47.2"), (b"ETag", b'"33a64df5"')]
CHUNKED_WIRE = (
    _head(
        b"HTTP/1.1 200 OK",
        [*CHUNKED_FIELDS, TRAILER_ANNOUNCE, (b"Transfer-Encoding", b"chunked")],
    )
    + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in CHUNKS)
    + b"0\r\n"
    + b"".join(b"%s: %s\r\n" % f for f in TRAILERS)
    + b"\r\n"
)

PIPELINE_TARGETS = [b"/static/app.css", b"/static/app.js", b"/static/logo.png"]
PIPELINE_WIRE = b"".join(
    _head(
        b"GET " + t + b" HTTP/1.1",
        [
            (b"Host", b"shop.example.com"),
            (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0"),
            (b"Accept", b"*/*"),
            (b"Accept-Encoding", b"gzip, deflate, br"),
            (b"Referer", b"https://shop.example.com/products/widgets"),
            (b"Cookie", b"session=8f14e45fceea167a5a36dedd4bea2543"),
            (b"Connection", b"keep-alive"),
        ],
    )
    for t in PIPELINE_TARGETS
)

#: What a persistent connection is fed, untimed, so the next message may be sent.
TINY_REQUEST = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
TINY_RESPONSE = b"HTTP/1.1 204 No Content\r\n\r\n"

# --- onehop ---------------------------------------------------------------------------------


def oh_drain(conn: Connection, sink: list[Any]) -> None:
    """Pull events into *sink* up to and including EndOfMessage."""
    while True:
        ev = conn.next_event()
        if ev is NEED_DATA or ev is PAUSED:
            raise RuntimeError(f"onehop: unexpected {ev!r}")
        sink.append(ev)
        if type(ev) is EndOfMessage:
            return


def oh_parse_setup_server() -> tuple[Connection, list[Any]]:
    return Connection(Role.SERVER), []


def oh_parse_setup_client() -> tuple[Connection, list[Any]]:
    conn = Connection(Role.CLIENT)
    conn.send(Request(b"GET", b"/", [(b"Host", b"example.com")]))
    conn.send(EndOfMessage())
    return conn, []


def oh_parse(wire: bytes) -> Callable[[tuple[Connection, list[Any]]], float]:
    def work(st: tuple[Connection, list[Any]]) -> float:
        conn, sink = st
        t0 = pc()
        conn.receive_data(wire)
        oh_drain(conn, sink)
        return pc() - t0

    return work


def oh_respond(conn: Connection) -> bytes:
    return (
        conn.send(Response(200, RESPONSE_FIELDS))
        + conn.send(Data(RESPONSE_BODY))
        + conn.send(EndOfMessage())
    )


def oh_pipelined(cycle: bool) -> Callable[[tuple[Connection, list[Any]]], float]:
    """Parse 3 pipelined requests, answering each; *cycle* times the answers too."""

    def parse_only(st: tuple[Connection, list[Any]]) -> float:
        conn, sink = st
        elapsed = 0.0
        for i in range(3):
            t0 = pc()
            if i == 0:
                conn.receive_data(PIPELINE_WIRE)
            oh_drain(conn, sink)
            elapsed += pc() - t0
            sink.append(oh_respond(conn))
        return elapsed

    def whole(st: tuple[Connection, list[Any]]) -> float:
        conn, sink = st
        t0 = pc()
        conn.receive_data(PIPELINE_WIRE)
        for _ in range(3):
            oh_drain(conn, sink)
            sink.append(oh_respond(conn))
        return pc() - t0

    return whole if cycle else parse_only


class OhPersistent:
    """A persistent onehop connection that is made ready to send, untimed."""

    def __init__(self, role: Role) -> None:
        self.conn = Connection(role)
        self.sink: list[Any] = []
        self.role = role

    def ready(self) -> OhPersistent:
        conn = self.conn
        if self.role is Role.SERVER:
            conn.receive_data(TINY_REQUEST)
            oh_drain(conn, [])
        elif conn.unanswered_requests:
            conn.receive_data(TINY_RESPONSE)
            oh_drain(conn, [])
        self.sink.clear()
        return self


def oh_send_get(p: OhPersistent) -> float:
    conn = p.conn
    t0 = pc()
    out = conn.send(Request(b"GET", GET_TARGET, GET_FIELDS)) + conn.send(EndOfMessage())
    elapsed = pc() - t0
    p.sink.append(out)
    return elapsed


def oh_send_post(p: OhPersistent) -> float:
    conn = p.conn
    t0 = pc()
    out = (
        conn.send(Request(b"POST", POST_TARGET, POST_FIELDS))
        + conn.send(Data(POST_BODY))
        + conn.send(EndOfMessage())
    )
    elapsed = pc() - t0
    p.sink.append(out)
    return elapsed


def oh_send_chunked(p: OhPersistent) -> float:
    conn = p.conn
    t0 = pc()
    parts = [conn.send(Response(200, CHUNKED_FIELDS,
                                connection=ConnectionInfo(fields=[TRAILER_ANNOUNCE])))]
    for chunk in CHUNKS:
        parts.append(conn.send(Data(chunk)))
    parts.append(conn.send(EndOfMessage(TRAILERS)))
    out = b"".join(parts)
    elapsed = pc() - t0
    p.sink.append(out)
    return elapsed


def oh_send_response(p: OhPersistent) -> float:
    conn = p.conn
    t0 = pc()
    out = oh_respond(conn)
    elapsed = pc() - t0
    p.sink.append(out)
    return elapsed


# --- h11 ------------------------------------------------------------------------------------

H11Role = type[h11.CLIENT] | type[h11.SERVER]


def h11_drain(conn: h11.Connection, sink: list[Any]) -> None:
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA or ev is h11.PAUSED:
            raise RuntimeError(f"h11: unexpected {ev!r}")
        sink.append(ev)
        if type(ev) is h11.EndOfMessage:
            return


def h11_parse_setup_server() -> tuple[h11.Connection, list[Any]]:
    return h11.Connection(h11.SERVER), []


def h11_parse_setup_client() -> tuple[h11.Connection, list[Any]]:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=b"GET", target=b"/", headers=[(b"Host", b"example.com")]))
    conn.send(h11.EndOfMessage())
    return conn, []


def h11_parse(wire: bytes) -> Callable[[tuple[h11.Connection, list[Any]]], float]:
    def work(st: tuple[h11.Connection, list[Any]]) -> float:
        conn, sink = st
        t0 = pc()
        conn.receive_data(wire)
        h11_drain(conn, sink)
        return pc() - t0

    return work


def h11_respond(conn: h11.Connection) -> bytes:
    return (
        conn.send(h11.Response(status_code=200, headers=RESPONSE_FIELDS))
        + conn.send(h11.Data(data=RESPONSE_BODY))
        + conn.send(h11.EndOfMessage())
    )


def h11_pipelined(cycle: bool) -> Callable[[tuple[h11.Connection, list[Any]]], float]:
    """Parse 3 pipelined requests, answering each; *cycle* times the answers too."""

    def parse_only(st: tuple[h11.Connection, list[Any]]) -> float:
        conn, sink = st
        elapsed = 0.0
        for i in range(3):
            t0 = pc()
            if i == 0:
                conn.receive_data(PIPELINE_WIRE)
            h11_drain(conn, sink)
            elapsed += pc() - t0
            sink.append(h11_respond(conn))
            conn.start_next_cycle()
        return elapsed

    def whole(st: tuple[h11.Connection, list[Any]]) -> float:
        conn, sink = st
        t0 = pc()
        conn.receive_data(PIPELINE_WIRE)
        for _ in range(3):
            h11_drain(conn, sink)
            sink.append(h11_respond(conn))
            conn.start_next_cycle()
        return pc() - t0

    return whole if cycle else parse_only


class H11Persistent:
    """A persistent h11 connection that is made ready to send, untimed."""

    def __init__(self, role: H11Role) -> None:
        self.conn = h11.Connection(role)
        self.sink: list[Any] = []
        self.role = role

    def ready(self) -> H11Persistent:
        conn = self.conn
        if conn.our_state is h11.DONE:
            if self.role is h11.CLIENT:
                conn.receive_data(TINY_RESPONSE)
                h11_drain(conn, [])
            conn.start_next_cycle()
        if self.role is h11.SERVER:
            conn.receive_data(TINY_REQUEST)
            h11_drain(conn, [])
        self.sink.clear()
        return self


def h11_send_get(p: H11Persistent) -> float:
    conn = p.conn
    t0 = pc()
    out = conn.send(
        h11.Request(method=b"GET", target=GET_TARGET, headers=GET_FIELDS)
    ) + conn.send(h11.EndOfMessage())
    elapsed = pc() - t0
    p.sink.append(out)
    return elapsed


def h11_send_post(p: H11Persistent) -> float:
    conn = p.conn
    t0 = pc()
    out = (
        conn.send(h11.Request(method=b"POST", target=POST_TARGET, headers=POST_FIELDS))
        + conn.send(h11.Data(data=POST_BODY))
        + conn.send(h11.EndOfMessage())
    )
    elapsed = pc() - t0
    p.sink.append(out)
    return elapsed


def h11_send_chunked(p: H11Persistent) -> float:
    conn = p.conn
    t0 = pc()
    parts = [conn.send(h11.Response(status_code=200,
                                    headers=[*CHUNKED_FIELDS, TRAILER_ANNOUNCE]))]
    for chunk in CHUNKS:
        parts.append(conn.send(h11.Data(data=chunk)))
    parts.append(conn.send(h11.EndOfMessage(headers=TRAILERS)))
    out = b"".join(parts)
    elapsed = pc() - t0
    p.sink.append(out)
    return elapsed


def h11_send_response(p: H11Persistent) -> float:
    conn = p.conn
    t0 = pc()
    out = h11_respond(conn)
    elapsed = pc() - t0
    p.sink.append(out)
    return elapsed


# --- httptools ------------------------------------------------------------------------------


class HtMessage:
    """Collects one message from httptools callbacks (what a server would keep)."""

    __slots__ = ("body", "headers", "method", "status", "target", "trailers", "version")

    def __init__(self) -> None:
        self.headers: Fields = []
        self.trailers: Fields = []
        self.body: list[bytes] = []
        self.target = b""
        self.method = b""
        self.status = 0
        self.version = ""


class HtProtocol:
    """The callbacks, shaped like uvicorn's (names lower-cased, body pieces kept)."""

    def __init__(self) -> None:
        self.parser: Any = None
        self.done: list[HtMessage] = []
        self.msg = HtMessage()
        self.headers = self.msg.headers

    def on_message_begin(self) -> None:
        self.msg = HtMessage()
        self.headers = self.msg.headers

    def on_url(self, url: bytes) -> None:
        self.msg.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        msg = self.msg
        parser = self.parser
        if type(parser) is httptools.HttpRequestParser:
            msg.method = parser.get_method()
        else:
            msg.status = parser.get_status_code()
        msg.version = parser.get_http_version()
        self.headers = msg.trailers

    def on_body(self, body: bytes) -> None:
        self.msg.body.append(body)

    def on_message_complete(self) -> None:
        self.done.append(self.msg)


def ht_setup_request() -> HtProtocol:
    proto = HtProtocol()
    proto.parser = httptools.HttpRequestParser(proto)
    return proto


def ht_setup_response() -> HtProtocol:
    proto = HtProtocol()
    proto.parser = httptools.HttpResponseParser(proto)
    return proto


def ht_parse(wire: bytes, messages: int = 1) -> Callable[[HtProtocol], float]:
    def work(proto: HtProtocol) -> float:
        t0 = pc()
        proto.parser.feed_data(wire)
        elapsed = pc() - t0
        if len(proto.done) != messages:
            raise RuntimeError("httptools: message incomplete")
        return elapsed

    return work


# --- checking that every library saw the same message --------------------------------------

HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"trailer", b"te", b"upgrade"}
Norm = tuple[Any, ...]


def _norm(first: Any, version: Any, fields: Fields, body: bytes, trailers: Fields) -> Norm:
    e2e = [(n.lower(), bytes(v)) for n, v in fields if n.lower() not in HOP]
    tr = [(n.lower(), bytes(v)) for n, v in trailers]
    ver = version.encode() if isinstance(version, str) else bytes(version)
    return first, ver, e2e, bytes(body), tr


def norm_events(events: list[Any]) -> list[Norm]:
    """Normalise onehop or h11 events into one tuple per message."""
    out: list[Norm] = []
    head: Any = None
    body = b""
    for ev in events:
        name = type(ev).__name__
        if name in ("Request", "Response"):
            head, body = ev, b""
        elif name == "Data":
            body += bytes(ev.data)
        elif name == "EndOfMessage":
            trailers = ev.trailers if isinstance(ev, EndOfMessage) else ev.headers
            if isinstance(head, Request | h11.Request):
                first: Any = (bytes(head.method), bytes(head.target))
            else:
                first = head.status_code
            fields = list(head.headers)
            if isinstance(head, Request | Response):
                fields += list(head.connection.fields)
            out.append(_norm(first, head.http_version, fields, body, list(trailers)))
    return out


def norm_httptools(proto: HtProtocol) -> list[Norm]:
    out = []
    for m in proto.done:
        first: Any = (m.method, m.target) if m.method else m.status
        out.append(_norm(first, m.version, m.headers, b"".join(m.body), m.trailers))
    return out


def h11_read(wire: bytes, role: H11Role) -> list[Norm]:
    """Parse *wire* as h11 in *role* (a client first sends a GET)."""
    conn = h11.Connection(role)
    if role is h11.CLIENT:
        conn.send(h11.Request(method=b"GET", target=b"/", headers=[(b"Host", b"example.com")]))
        conn.send(h11.EndOfMessage())
    conn.receive_data(wire)
    sink: list[Any] = []
    h11_drain(conn, sink)
    return norm_events(sink)


# --- the harness ----------------------------------------------------------------------------


class Case:
    """One measurement: *setup* builds the state untimed, *work* returns the seconds it timed."""

    def __init__(
        self,
        scenario: str,
        op: str,
        lib: str,
        setup: Callable[[], Any],
        work: Callable[[Any], float],
        *,
        messages: int = 1,
        segments: int = 1,
        check: Callable[[Any], list[Norm]],
    ) -> None:
        self.scenario = scenario
        self.op = op
        self.lib = lib
        self.setup = setup
        self.work = work
        self.messages = messages
        self.segments = segments
        self.check = check


def _noop(_: object) -> float:
    t0 = pc()
    return pc() - t0


def _run(setup: Callable[[], Any], work: Callable[[Any], float], n: int) -> float:
    acc = 0.0
    for _ in range(n):
        acc += work(setup())
    return acc


def clock_overhead() -> float:
    """Seconds one ``t0 = pc(); ...; pc() - t0`` segment adds, best of several runs."""
    n = 200_000
    gc.disable()
    try:
        return min(_run(lambda: None, _noop, n) for _ in range(5)) / n
    finally:
        gc.enable()


def measure(case: Case, seconds: float, repeats: int, overhead: float) -> dict[str, Any]:
    """Best-of-*repeats* messages per second, with about *seconds* timed in all."""
    return measure_row([case], seconds, repeats, overhead)[0]


def measure_row(
    cases: list[Case], seconds: float, repeats: int, overhead: float
) -> list[dict[str, Any]]:
    """:func:`measure` for the libraries of one row, their repeats interleaved.

    Each repeat runs every library once, in turn, so that a change in the
    machine's load (other processes on a shared host) hits them alike and the
    ratios stay meaningful. Each case still gets about *seconds* timed in all
    and its best repeat is kept.
    """
    gc.disable()
    try:
        counts = []
        for case in cases:
            n, spent = 16, 0.0
            while True:  # calibrate
                spent = _run(case.setup, case.work, n)
                if spent > 0.02 or n > 1_000_000:
                    break
                n *= 4
            per_iter = spent / n
            counts.append(max(16, int(seconds / repeats / per_iter)))
        best = [math.inf] * len(cases)
        for _ in range(repeats):
            for i, case in enumerate(cases):
                n = counts[i]
                timed = _run(case.setup, case.work, n) - n * case.segments * overhead
                best[i] = min(best[i], timed / n)
                gc.collect()
    finally:
        gc.enable()
    results = []
    for case, n, b in zip(cases, counts, best, strict=True):
        rate = case.messages / b
        results.append({
            "scenario": case.scenario,
            "op": case.op,
            "lib": case.lib,
            "msgs_per_s": rate,
            "us_per_msg": 1e6 / rate,
            "iterations": n,
            "repeats": repeats,
        })
    return results


def oh_check_send(role: Role) -> Callable[[OhPersistent], list[Norm]]:
    peer = h11.SERVER if role is Role.CLIENT else h11.CLIENT
    return lambda p: h11_read(p.sink[-1], peer)


def h11_check_send(role: H11Role) -> Callable[[H11Persistent], list[Norm]]:
    peer = h11.SERVER if role is h11.CLIENT else h11.CLIENT
    return lambda p: h11_read(p.sink[-1], peer)


def oh_check_pipelined(st: tuple[Connection, list[Any]]) -> list[Norm]:
    return norm_events([e for e in st[1] if not isinstance(e, bytes)])


def h11_check_pipelined(st: tuple[h11.Connection, list[Any]]) -> list[Norm]:
    return norm_events([e for e in st[1] if not isinstance(e, bytes)])


def build_cases() -> list[Case]:
    cases: list[Case] = []

    def sink_of(st: tuple[Any, list[Any]]) -> list[Norm]:
        return norm_events(st[1])

    parse_specs = [
        ("get", GET_WIRE, True),
        ("post", POST_WIRE, True),
        ("chunked", CHUNKED_WIRE, False),
        ("response", RESPONSE_WIRE, False),
    ]
    for scenario, wire, is_request in parse_specs:
        oh_setup = oh_parse_setup_server if is_request else oh_parse_setup_client
        h11_setup = h11_parse_setup_server if is_request else h11_parse_setup_client
        ht_setup = ht_setup_request if is_request else ht_setup_response
        cases += [
            Case(scenario, "parse", "onehop", oh_setup, oh_parse(wire), check=sink_of),
            Case(scenario, "parse", "h11", h11_setup, h11_parse(wire), check=sink_of),
            Case(scenario, "parse", "httptools", ht_setup, ht_parse(wire), check=norm_httptools),
        ]
    cases += [
        Case("pipelined", "parse", "onehop", oh_parse_setup_server, oh_pipelined(False),
             messages=3, segments=3, check=oh_check_pipelined),
        Case("pipelined", "parse", "h11", h11_parse_setup_server, h11_pipelined(False),
             messages=3, segments=3, check=h11_check_pipelined),
        Case("pipelined", "parse", "httptools", ht_setup_request, ht_parse(PIPELINE_WIRE, 3),
             messages=3, check=norm_httptools),
    ]
    send_specs: list[tuple[str, bool, Callable[[OhPersistent], float],
                           Callable[[H11Persistent], float]]] = [
        ("get", True, oh_send_get, h11_send_get),
        ("post", True, oh_send_post, h11_send_post),
        ("chunked", False, oh_send_chunked, h11_send_chunked),
        ("response", False, oh_send_response, h11_send_response),
    ]
    for scenario, client, oh_work, h11_work in send_specs:
        role = Role.CLIENT if client else Role.SERVER
        h11_role = h11.CLIENT if client else h11.SERVER
        oh_conn = OhPersistent(role)
        h11_conn = H11Persistent(h11_role)
        cases += [
            Case(scenario, "serialize", "onehop", oh_conn.ready, oh_work,
                 check=oh_check_send(role)),
            Case(scenario, "serialize", "h11", h11_conn.ready, h11_work,
                 check=h11_check_send(h11_role)),
        ]
    cases += [
        Case("pipelined", "cycle", "onehop", oh_parse_setup_server, oh_pipelined(True),
             messages=3, check=oh_check_pipelined),
        Case("pipelined", "cycle", "h11", h11_parse_setup_server, h11_pipelined(True),
             messages=3, check=h11_check_pipelined),
    ]
    return cases


def verify(cases: list[Case]) -> None:
    """Run every case once and require the libraries to agree on each message."""
    seen: dict[tuple[str, str], tuple[str, list[Norm]]] = {}
    for case in cases:
        state = case.setup()
        case.work(state)
        got = case.check(state)
        if not got:
            raise SystemExit(f"{case.scenario}/{case.op}/{case.lib}: no message")
        key = (case.scenario, case.op)
        if key not in seen:
            seen[key] = (case.lib, got)
        elif seen[key][1] != got:
            other, want = seen[key]
            raise SystemExit(
                f"{case.scenario}/{case.op}: {case.lib} disagrees with {other}:\n"
                f"  {got}\n  {want}"
            )


def compiled_row(python: str, scenario: str, op: str, seconds: float,
                 repeats: int) -> list[dict[str, Any]]:
    """The onehop results of one row measured by the compiled build in *python* (a child
    process running this script with ``--worker``), relabelled ``onehop-compiled``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [python, __file__, "--worker", "--only", scenario, "--op", op, "--time", str(seconds),
         "--repeat", str(repeats)],
        capture_output=True, text=True, check=True, env=env, cwd="/")
    results: list[dict[str, Any]] = json.loads(out.stdout)
    for r in results:
        r["lib"] = "onehop-compiled"
    return results


def compiled_python(venv: str) -> str:
    """The Python of the compiled build's venv; exit when it does not run compiled."""
    python = str(os.path.join(venv, "bin", "python"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([python, "-c", "import onehop; print(onehop.compiled)"],
                         capture_output=True, text=True, env=env, cwd="/")
    if out.stdout.strip() != "True":
        raise SystemExit(f"{venv}: onehop there is not the compiled build "
                         f"({out.stdout.strip() or out.stderr.strip()[-200:]})")
    return python


ROWS = [
    ("get", "parse"), ("post", "parse"), ("chunked", "parse"), ("response", "parse"),
    ("pipelined", "parse"), ("get", "serialize"), ("post", "serialize"),
    ("chunked", "serialize"), ("response", "serialize"), ("pipelined", "cycle"),
]
LIBS = ("onehop", "onehop-compiled", "h11", "httptools")


def _mix_rate(rates: list[float]) -> float:
    """Messages per second over one message of each row (total time over the mix)."""
    return len(rates) / sum(1 / r for r in rates)


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(r["scenario"], r["op"], r["lib"]): r["msgs_per_s"] for r in results}
    rows: list[dict[str, Any]] = []
    for scenario, op in ROWS:
        rates = {lib: by.get((scenario, op, lib)) for lib in LIBS}
        if rates["onehop"] is None:
            continue
        rows.append({"row": f"{scenario} {op}", **rates})
    present = [(s, o) for s, o in ROWS if (s, o, "onehop") in by]
    mixes = [
        ("total mix: parse", [r for r in present if r[1] == "parse"]),
        ("total mix: serialize + cycle", [r for r in present if r[1] != "parse"]),
        ("total mix: all", present),
    ]
    mixes = [(label, keys) for label, keys in mixes if keys]
    for label, keys in mixes:
        mix: dict[str, Any] = {"row": label}
        for lib in LIBS:
            lib_rates = [by[(s, o, lib)] for s, o in keys if (s, o, lib) in by]
            mix[lib] = _mix_rate(lib_rates) if len(lib_rates) == len(keys) else None
        if mix["httptools"] is None:
            # httptools has no serializer: compare onehop with it over the parse rows only.
            parse = [(s, o) for s, o in keys if o == "parse"]
            if parse:
                mix["onehop_parse_only"] = _mix_rate([by[(s, o, "onehop")] for s, o in parse])
                mix["httptools"] = _mix_rate([by[(s, o, "httptools")] for s, o in parse])
            if parse and mix["onehop-compiled"] is not None:
                mix["compiled_parse_only"] = _mix_rate(
                    [by[(s, o, "onehop-compiled")] for s, o in parse])
        rows.append(mix)
    for row in rows:
        oh = row.get("onehop")
        ohc = row.get("onehop-compiled")
        row["onehop/h11"] = oh / row["h11"] if oh and row.get("h11") else None
        base = row.get("onehop_parse_only", oh)
        row["onehop/httptools"] = base / row["httptools"] if base and row["httptools"] else None
        cbase = row.get("compiled_parse_only", ohc)
        row["compiled/httptools"] = (
            cbase / row["httptools"] if cbase and row["httptools"] else None)
        row["compiled/pure"] = ohc / oh if ohc and oh else None
    geo: dict[str, Any] = {"row": "geometric mean of ratios", **dict.fromkeys(LIBS)}
    for key in ("onehop/h11", "onehop/httptools", "compiled/httptools", "compiled/pure"):
        vals = [r[key] for r in rows[: -len(mixes)] if r[key]]
        geo[key] = math.prod(vals) ** (1 / len(vals)) if vals else None
    rows.append(geo)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    def rate(v: float | None) -> str:
        return f"{v:,.0f}" if v else "-"

    def ratio(v: float | None) -> str:
        return f"{v:.2f}x" if v else "-"

    compiled = any(r.get("onehop-compiled") for r in rows)
    if compiled:
        lines = [
            "| scenario | onehop compiled msg/s | onehop pure msg/s | h11 msg/s | httptools msg/s "
            "| compiled/pure | compiled/httptools | pure/httptools | pure/h11 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        lines = [
            "| scenario | onehop msg/s | h11 msg/s | httptools msg/s | onehop/h11 "
            "| onehop/httptools |",
            "|---|---:|---:|---:|---:|---:|",
        ]
    for r in rows:
        if compiled:
            lines.append(
                f"| {r['row']} | {rate(r['onehop-compiled'])} | {rate(r['onehop'])} "
                f"| {rate(r['h11'])} | {rate(r['httptools'])} | {ratio(r['compiled/pure'])} "
                f"| {ratio(r['compiled/httptools'])} | {ratio(r['onehop/httptools'])} "
                f"| {ratio(r['onehop/h11'])} |")
        else:
            lines.append(
                f"| {r['row']} | {rate(r['onehop'])} | {rate(r['h11'])} | {rate(r['httptools'])} "
                f"| {ratio(r['onehop/h11'])} | {ratio(r['onehop/httptools'])} |"
            )
    lines += [
        "",
        "msg/s = messages per second (pipelined: requests). Total mix = messages per second",
        "over one message of each row (total time). httptools only parses: its mix figures",
        "and onehop/httptools always cover the parse rows only.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    ap.add_argument("--time", type=float, default=None,
                    help="timed seconds per measurement (default 1.5; 0.05 with --quick)")
    ap.add_argument("--repeat", type=int, default=None, help="repeats (default 5; 3 with --quick)")
    ap.add_argument("--only", default="", help="comma-separated scenarios to run")
    ap.add_argument("--untimed", type=int, default=0, metavar="N",
                    help="run each onehop case N times, untimed and unchecked, and exit: for "
                    "valgrind --tool=callgrind (subtract a run with N=0 for the setup)")
    ap.add_argument("--compiled-venv", metavar="PATH",
                    default=os.environ.get("ONEHOP_COMPILED_VENV") or None,
                    help="a venv with the compiled build (ONEHOP_COMPILE=1 pip install .): "
                    "add its rows (default: $ONEHOP_COMPILED_VENV)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--op", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    seconds = args.time if args.time is not None else (0.05 if args.quick else 1.5)
    repeats = args.repeat if args.repeat is not None else (3 if args.quick else 5)

    cases = build_cases()
    if args.only:
        wanted = set(args.only.split(","))
        cases = [c for c in cases if c.scenario in wanted]
    if args.worker:  # (a compiled row, for the parent: see compiled_row)
        ours = [c for c in cases if c.lib == "onehop" and (not args.op or c.op == args.op)]
        json.dump(measure_row(ours, seconds, repeats, clock_overhead()), sys.stdout)
        return 0
    compiled_py = compiled_python(args.compiled_venv) if args.compiled_venv else None
    if compiled_py is not None and onehop.compiled:
        raise SystemExit("run the pure build here (PYTHONPATH=src): the compiled one runs "
                         "from --compiled-venv")
    if args.untimed or "--untimed" in (argv if argv is not None else sys.argv):
        for case in cases:
            if case.lib == "onehop":
                _run(case.setup, case.work, args.untimed)
        return 0
    verify(cases)
    overhead = clock_overhead()
    log = sys.stderr
    print(f"onehop {onehop.__version__}, h11 {version('h11')}, httptools {version('httptools')}"
          f", {platform.python_implementation()} {platform.python_version()}; "
          f"{seconds:g} s x best of {repeats}; clock overhead {overhead * 1e9:.0f} ns",
          file=log)
    results = []
    by_row: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        by_row.setdefault((case.scenario, case.op), []).append(case)
    for (scenario, op), row in by_row.items():
        got = measure_row(row, seconds, repeats, overhead)
        if compiled_py is not None:
            got += compiled_row(compiled_py, scenario, op, seconds, repeats)
        for r in got:
            results.append(r)
            print(f"  {r['scenario']:9} {r['op']:9} {r['lib']:15} {r['msgs_per_s']:>12,.0f} msg/s"
                  f"  {r['us_per_msg']:7.2f} us", file=log)
    rows = summarize(results)
    if args.json:
        json.dump({
            "meta": {
                "onehop": onehop.__version__, "h11": version("h11"),
                "httptools": version("httptools"), "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "seconds": seconds, "repeats": repeats, "clock_overhead_s": overhead,
            },
            "results": results,
            "summary": rows,
        }, sys.stdout, indent=2)
        print()
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
