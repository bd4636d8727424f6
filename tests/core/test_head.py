"""What a head we send says: the status line (RFC 9112 §4), and the same bytes and
checks for a header list sent many times (RFC 9110 §7.6.1, RFC 9112 §3.2, §9.3; issue 2, 3).

An instance keeps its serialized form (``Headers.wire()``, ``ConnectionInfo.lines``)
so a server that shares one header list across responses serializes it once. These
tests check the memo never changes what goes on the wire, and never skips a check
whose answer depends on more than the memoized instance.
"""

from __future__ import annotations

import pytest

from onehop.core import (
    Connection,
    ConnectionInfo,
    Data,
    EndOfMessage,
    Headers,
    Request,
    Response,
    Role,
    split_headers,
)
from onehop.errors import HopByHopInHeaders, InvalidMessageToSend
from tests.helpers import events

SHARED = Headers([(b"Content-Type", b"text/plain"), (b"Content-Length", b"2")])


def _answer(request: bytes, response: Response) -> bytes:
    server = Connection(Role.SERVER)
    events(server, request)
    return server.send(response) + server.send(Data(b"ok")) + server.send(EndOfMessage())


def test_shared_headers_serialize_the_same_every_time() -> None:
    fresh = _answer(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                    Response(200, Headers(SHARED.raw())))
    for _ in range(3):
        assert _answer(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Response(200, SHARED)) == fresh


@pytest.mark.parametrize(
    ("request_head", "connection_line"),
    [
        # RFC 9112 §9.3: HTTP/1.1 persists by default; the Keep-Alive field is
        # still listed in Connection (RFC 7230 §A.1.2).
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"Connection: keep-alive"),
        # RFC 9112 §9.6: close answered with close.
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", b"Connection: close"),
        # RFC 7230 §A.1.2: a 1.0 keep-alive request persists only if the response says so.
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", b"Connection: keep-alive"),
        # RFC 9112 §9.3: HTTP/1.0 without keep-alive closes.
        (b"GET / HTTP/1.0\r\n\r\n", b"Connection: close"),
    ],
)
def test_one_connection_info_serves_every_persistence_case(
    request_head: bytes, connection_line: bytes
) -> None:
    """One shared ConnectionInfo (a Keep-Alive hint) is written per case, not once for all."""
    shared = ConnectionInfo(fields=[(b"Keep-Alive", b"timeout=5")])
    for _ in range(2):
        wire = _answer(request_head, Response(200, SHARED, connection=shared))
        head = wire.split(b"\r\n\r\n")[0].split(b"\r\n")
        assert [line for line in head if line.startswith(b"Connection:")] == [connection_line]
        # The hint is a keep-alive parameter: never sent on a response that closes.
        assert (b"Keep-Alive: timeout=5" in head) == (connection_line != b"Connection: close")


def test_nominating_a_shared_field_is_still_refused() -> None:
    """RFC 9110 §7.6.1: a field named in Connection is hop-by-hop, even in a memoized list."""
    _answer(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Response(200, SHARED))  # memoize
    server = Connection(Role.SERVER)
    events(server, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(HopByHopInHeaders):
        server.send(Response(200, SHARED, connection=ConnectionInfo(options=[b"content-type"])))


def test_a_hop_by_hop_field_is_refused_on_every_send() -> None:
    bad = Headers([(b"Keep-Alive", b"timeout=5")])
    for _ in range(2):
        client = Connection(Role.CLIENT)
        with pytest.raises(HopByHopInHeaders):
            client.send(Request(b"GET", b"/", [(b"Host", b"a"), *bad.raw()]))
        with pytest.raises(HopByHopInHeaders):
            _answer(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Response(200, bad))


def test_shared_request_headers_keep_the_host_rule() -> None:
    """RFC 9112 §3.2: the Host check reads the memo; HTTP/1.1 without Host is refused."""
    with_host = Headers([(b"Host", b"a")])
    without = Headers([(b"Accept", b"*/*")])
    for _ in range(2):
        assert Connection(Role.CLIENT).send(Request(b"GET", b"/", with_host)).startswith(
            b"GET / HTTP/1.1\r\nHost: a\r\n")
        with pytest.raises(Exception, match="Host"):
            Connection(Role.CLIENT).send(Request(b"GET", b"/", without))


@pytest.mark.parametrize(
    ("reason", "line"),
    [
        (b"", b"HTTP/1.1 200 OK"),  # none given: the customary phrase
        (b"OK", b"HTTP/1.1 200 OK"),  # the customary one, as a proxy relays it
        (b"Fine, thanks", b"HTTP/1.1 200 Fine, thanks"),  # any other is kept as given
    ],
)
def test_status_line_keeps_the_reason_phrase_rfc9112_4(reason: bytes, line: bytes) -> None:
    wire = _answer(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Response(200, SHARED, reason=reason))
    assert wire.split(b"\r\n")[0] == line


def test_invalid_reason_phrase_is_refused_rfc9112_4() -> None:
    server = Connection(Role.SERVER)
    events(server, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(InvalidMessageToSend):
        server.send(Response(200, SHARED, reason=b"OK\r\nX-Injected: 1"))


@pytest.mark.parametrize(
    ("method", "target"),
    [(b"G@T", b"/"), (b"GET", b"/a b"), (b"GET", b"/#f"), (b"GET", b"*"),
     (b"CONNECT", b"/"), (b"GET", b"http://u@h/")],
)
def test_a_request_line_we_could_not_receive_is_not_sent_rfc9112_3(
    method: bytes, target: bytes
) -> None:
    with pytest.raises(InvalidMessageToSend):
        Connection(Role.CLIENT).send(Request(method, target, [(b"Host", b"a")]))


def test_only_http10_and_http11_are_sent_rfc9110_2_5() -> None:
    with pytest.raises(InvalidMessageToSend, match="HTTP/2"):
        Connection(Role.CLIENT).send(Request(b"GET", b"/", [(b"Host", b"a")],
                                             http_version=b"2.0"))
    head = Connection(Role.CLIENT).send(Request(b"GET", b"/", http_version=b"1.0"))
    assert head == b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"


def test_split_headers_are_sent_as_given_rfc9110_7_6_1() -> None:
    """Fields split from a list with hop-by-hop ones (as a server splits an app's) are
    sent end-to-end, and the connection-specific part in ``connection``."""
    headers, conn = split_headers([("Content-Length", "2"), ("Connection", "x-a"), ("X-A", "1"),
                                   ("X-B", "2")])
    wire = _answer(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                   Response(200, headers, connection=ConnectionInfo(conn.options, [("X-A", "1")])))
    assert wire.split(b"\r\n\r\n")[0].split(b"\r\n")[1:] == [
        b"Content-Length: 2", b"X-B: 2", b"X-A: 1", b"Connection: x-a"]
