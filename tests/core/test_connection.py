"""Both roles of the core driven against each other and against raw bytes (RFC 9112 §6, §9)."""

from __future__ import annotations

import pytest

from onehop.core import (
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    ConnectionInfo,
    Data,
    EndOfMessage,
    InformationalResponse,
    Limits,
    Request,
    Response,
    Role,
    State,
)
from onehop.errors import (
    BodyTooLarge,
    FramingMismatch,
    HopByHopInHeaders,
    IncompleteMessage,
    InvalidMessageToSend,
    InvalidSendState,
    RemoteProtocolError,
)
from tests.helpers import ConnectionPair, events

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def respond(server: Connection, body: bytes = b"ok", **kw: object) -> bytes:
    head = Response(200, [("Content-Length", str(len(body)))], **kw)  # type: ignore[arg-type]
    return server.send(head) + server.send(Data(body)) + server.send(EndOfMessage())


# --- persistence ------------------------------------------------------------------------------


def test_http11_connection_persists_by_default_rfc9112_9_3() -> None:
    server = Connection(Role.SERVER)
    evs = events(server, GET)
    assert [type(e) for e in evs] == [Request, EndOfMessage]
    wire = respond(server)
    assert b"connection" not in wire.lower()
    assert server.our_state is State.IDLE and server.their_state is State.IDLE
    assert [type(e) for e in events(server, GET)] == [Request, EndOfMessage]


@pytest.mark.parametrize("line", [b"close", b"CLOSE", b"foo, Close", b" ,close,"])
def test_close_option_ends_connection_after_response_rfc9112_9_6(line: bytes) -> None:
    server = Connection(Role.SERVER)
    events(server, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: " + line + b"\r\n\r\n")
    wire = respond(server)
    assert b"\r\nConnection: close\r\n" in wire
    assert server.must_close and server.our_state is State.DONE


def test_close_in_a_second_connection_line_counts_rfc9110_5_3() -> None:
    server = Connection(Role.SERVER)
    events(server, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: close\r\n\r\n")
    assert b"Connection: close" in respond(server)


def test_bytes_after_a_close_request_are_never_processed_rfc9112_9_6() -> None:
    server = Connection(Role.SERVER)
    evs = events(server, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + GET)
    assert [type(e) for e in evs] == [Request, EndOfMessage]
    respond(server)
    assert server.next_event() is PAUSED
    assert server.their_state is State.DONE


def test_http10_without_keep_alive_closes_rfc9112_9_3() -> None:
    server = Connection(Role.SERVER)
    events(server, b"GET / HTTP/1.0\r\n\r\n")
    wire = respond(server)
    assert wire.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in wire


def test_http10_keep_alive_is_honoured_and_announced_rfc7230_a_1_2() -> None:
    server = Connection(Role.SERVER)
    events(server, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    wire = respond(server, connection=ConnectionInfo(fields=[("Keep-Alive", "timeout=5, max=9")]))
    assert b"\r\nKeep-Alive: timeout=5, max=9\r\nConnection: keep-alive\r\n" in wire
    assert [type(e) for e in events(server, b"GET / HTTP/1.0\r\n\r\n")] == [Request, EndOfMessage]


def test_http10_keep_alive_declined_when_disabled() -> None:
    server = Connection(Role.SERVER, http10_keep_alive=False)
    events(server, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert b"Connection: close" in respond(server)


def test_proxy_does_not_keep_http10_client_alive_rfc7230_6_3() -> None:
    server = Connection(Role.SERVER, intermediary=True)
    events(server, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert b"Connection: close" in respond(server)


def test_http10_response_without_length_is_close_delimited_never_chunked_rfc9112_6_1() -> None:
    server = Connection(Role.SERVER)
    events(server, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    wire = server.send(Response(200)) + server.send(Data(b"abc")) + server.send(EndOfMessage())
    assert b"chunked" not in wire.lower() and b"Connection: close" in wire
    assert wire.endswith(b"\r\n\r\nabc")


def test_http11_response_without_length_is_chunked_with_trailers_rfc9112_7_1() -> None:
    pair = ConnectionPair()
    pair.client_sends(Request("GET", "/", [("Host", "a")]), EndOfMessage())
    evs = pair.server_sends(Response(200), Data(b"ab"), Data(b"c"),
                            EndOfMessage([("X-Sum", "1")]))
    assert [type(e) for e in evs] == [Response, Data, Data, EndOfMessage]
    assert b"".join(e.data for e in evs if isinstance(e, Data)) == b"abc"
    end = evs[-1]
    assert isinstance(end, EndOfMessage) and end.trailers.raw() == [(b"X-Sum", b"1")]


def test_app_close_option_on_response_ends_connection_rfc9112_9_6() -> None:
    server = Connection(Role.SERVER)
    events(server, GET)
    wire = respond(server, connection=ConnectionInfo(options=["close"]))
    assert b"Connection: close" in wire and server.must_close


def test_server_without_keep_alive_sends_close_on_every_response_rfc9112_9_6() -> None:
    server = Connection(Role.SERVER, keep_alive=False)
    events(server, GET)
    assert b"Connection: close" in respond(server)


# --- pipelining -------------------------------------------------------------------------------


def test_pipelined_requests_are_yielded_one_at_a_time_in_order_rfc9112_9_3_2() -> None:
    server = Connection(Role.SERVER)
    wire = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(3))
    for i in range(3):
        evs = events(server, wire if i == 0 else b"")
        assert len(evs) == 2
        assert isinstance(evs[0], Request) and evs[0].target == b"/%d" % i
        assert server.next_event() is PAUSED
        respond(server)
    assert server.next_event() is NEED_DATA


def test_client_reports_unanswered_pipelined_requests_after_close_rfc9112_9_3_2() -> None:
    client = Connection(Role.CLIENT)
    for i in range(3):
        client.send(Request("GET", f"/{i}", [("Host", "a")]))
        client.send(EndOfMessage())
    evs = events(client, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert [type(e) for e in evs] == [Response, EndOfMessage]
    assert [r.target for r in client.unanswered_requests] == [b"/1", b"/2"]
    assert client.must_close
    with pytest.raises(InvalidSendState):
        client.send(Request("GET", "/3", [("Host", "a")]))


def test_client_knows_head_responses_have_no_body_rfc9112_6_3() -> None:
    client = Connection(Role.CLIENT)
    for method in ("HEAD", "GET"):
        client.send(Request(method, "/", [("Host", "a")]))
        client.send(EndOfMessage())
    evs = events(client, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert [type(e) for e in evs] == [Response, EndOfMessage, Response, Data, EndOfMessage]
    assert client.is_idle


def test_client_eof_between_responses_is_connection_closed_with_unanswered() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request("GET", "/", [("Host", "a")]))
    client.send(EndOfMessage())
    assert [type(e) for e in events(client, eof=True)] == [ConnectionClosed]
    assert len(client.unanswered_requests) == 1


def test_http10_response_without_keep_alive_ends_persistence_rfc9112_9_3() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request("GET", "/", [("Host", "a")]))
    client.send(EndOfMessage())
    events(client, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert not client.keep_alive and not client.is_idle


def test_close_delimited_response_is_read_to_eof_rfc9112_6_3() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request("GET", "/", [("Host", "a")]))
    client.send(EndOfMessage())
    evs = events(client, b"HTTP/1.0 200 OK\r\n\r\npart1")
    assert [type(e) for e in evs] == [Response, Data]
    more = events(client, b"part2", eof=True)
    assert [type(e) for e in more] == [Data, EndOfMessage, ConnectionClosed]
    assert b"".join(e.data for e in evs + more if isinstance(e, Data)) == b"part1part2"


# --- 1xx, Upgrade, CONNECT --------------------------------------------------------------------


def test_100_continue_then_final_response_rfc9110_10_1_1() -> None:
    pair = ConnectionPair()
    evs = pair.client_sends(
        Request("POST", "/", [("Host", "a"), ("Expect", "100-continue"), ("Content-Length", "2")])
    )
    request = evs[0]
    assert isinstance(request, Request) and request.expects_continue
    evs = pair.server_sends(InformationalResponse(100), InformationalResponse(103))
    assert [e.status_code for e in evs if isinstance(e, InformationalResponse)] == [100, 103]
    assert [type(e) for e in pair.client_sends(Data(b"hi"), EndOfMessage())] == [
        Data, EndOfMessage]
    evs = pair.server_sends(Response(201, [("Content-Length", "0")]), EndOfMessage())
    assert [type(e) for e in evs] == [Response, EndOfMessage]


def test_no_close_on_1xx_even_when_connection_will_close_rfc9110_15_2() -> None:
    server = Connection(Role.SERVER)
    events(server, b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nExpect: 100-continue\r\n"
                   b"Content-Length: 1\r\n\r\n")
    wire = server.send(InformationalResponse(100))
    assert wire == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_no_1xx_to_http10_client_rfc9110_15_2() -> None:
    server = Connection(Role.SERVER)
    events(server, b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(InvalidSendState):
        server.send(InformationalResponse(100))


def test_upgrade_switches_and_hands_over_trailing_bytes_rfc9110_7_8() -> None:
    pair = ConnectionPair()
    up = ConnectionInfo(fields=[("Upgrade", "websocket")])
    pair.client_sends(Request("GET", "/ws", [("Host", "a")], connection=up), EndOfMessage())
    pair.server.receive_data(b"\x81\x00early")
    wire = pair.server.send(InformationalResponse(101, connection=up)) + b"frames"
    assert b"Connection: upgrade" in wire and b"Upgrade: websocket" in wire
    assert pair.server.our_state is State.SWITCHED
    assert pair.server.trailing_data == (b"\x81\x00early", False)
    evs = events(pair.client, wire)
    assert isinstance(evs[0], InformationalResponse) and evs[0].status_code == 101
    assert pair.client.their_state is State.SWITCHED
    assert pair.client.trailing_data[0] == b"frames"


def test_refused_upgrade_continues_as_http() -> None:
    pair = ConnectionPair()
    up = ConnectionInfo(fields=[("Upgrade", "websocket")])
    pair.client_sends(Request("GET", "/ws", [("Host", "a")], connection=up), EndOfMessage())
    assert pair.client.our_state is State.PAUSED
    pair.server_sends(Response(200, [("Content-Length", "0")]), EndOfMessage())
    assert pair.client.is_idle


def test_connect_2xx_opens_a_tunnel_rfc9110_9_3_6() -> None:
    pair = ConnectionPair()
    evs = pair.client_sends(Request("CONNECT", "example.com:443", [("Host", "example.com:443")]),
                            EndOfMessage())
    assert isinstance(evs[0], Request) and evs[0].target == b"example.com:443"
    wire = pair.server.send(Response(200))
    assert b"Transfer-Encoding" not in wire and b"Content-Length" not in wire
    events(pair.client, wire + b"\x16\x03tls")
    assert pair.client.their_state is State.SWITCHED
    assert pair.client.trailing_data[0] == b"\x16\x03tls"


def test_101_without_upgrade_offer_is_an_error() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request("GET", "/", [("Host", "a")]))
    client.send(EndOfMessage())
    with pytest.raises(RemoteProtocolError):
        events(client, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")


# --- writer rules -----------------------------------------------------------------------------


def test_hop_by_hop_field_in_headers_is_refused_rfc9110_7_6_1() -> None:
    client = Connection(Role.CLIENT)
    for name in ("Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "TE"):
        with pytest.raises(HopByHopInHeaders):
            client.send(Request("GET", "/", [("Host", "a"), (name, "x")]))
    assert client.our_state is State.IDLE


def test_nominated_connection_fields_are_listed_in_connection_rfc9110_7_6_1() -> None:
    client = Connection(Role.CLIENT)
    wire = client.send(Request("GET", "/", [("Host", "a")],
                               connection=ConnectionInfo(fields=[("TE", "trailers"),
                                                                 ("X-Hop", "1")])))
    assert b"TE: trailers\r\nX-Hop: 1\r\nConnection: te, x-hop\r\n" in wire


def test_content_length_and_body_must_agree() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request("POST", "/", [("Host", "a"), ("Content-Length", "3")]))
    with pytest.raises(FramingMismatch):
        client.send(Data(b"toolong"))
    client.send(Data(b"ab"))
    with pytest.raises(FramingMismatch):
        client.send(EndOfMessage())


def test_conflicting_framing_cannot_be_sent_rfc9112_6_3() -> None:
    client = Connection(Role.CLIENT)
    with pytest.raises(FramingMismatch):
        client.send(Request("POST", "/", [("Host", "a"), ("Content-Length", "3")],
                            connection=ConnectionInfo(fields=[("Transfer-Encoding", "chunked")])))


def test_request_without_length_has_no_body() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request("GET", "/", [("Host", "a")]))
    with pytest.raises(FramingMismatch):
        client.send(Data(b"x"))


def test_http11_request_needs_host_rfc9112_3_2() -> None:
    with pytest.raises(InvalidMessageToSend):
        Connection(Role.CLIENT).send(Request("GET", "/"))


def test_client_without_keep_alive_sends_close_rfc9112_9_6() -> None:
    client = Connection(Role.CLIENT, keep_alive=False)
    wire = client.send(Request("GET", "/", [("Host", "a")]))
    assert b"Connection: close" in wire
    client.send(EndOfMessage())
    assert client.our_state is State.DONE


def test_http10_client_asks_for_keep_alive_rfc7230_a_1_2() -> None:
    client = Connection(Role.CLIENT)
    wire = client.send(Request("GET", "/", http_version=b"1.0"))
    assert wire == b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"


def test_head_response_keeps_content_length_without_body_rfc9110_9_3_2() -> None:
    server = Connection(Role.SERVER)
    events(server, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    wire = server.send(Response(200, [("Content-Length", "10")]))
    wire += server.send(EndOfMessage())
    assert wire.endswith(b"Content-Length: 10\r\n\r\n")
    assert server.our_state is State.IDLE


def test_error_response_after_malformed_request_closes_rfc9112_2_2() -> None:
    server = Connection(Role.SERVER)
    with pytest.raises(RemoteProtocolError) as info:
        events(server, b"GET / HTTP/1.1\r\nHost : a\r\n\r\n")
    assert info.value.status_hint == 400
    wire = server.send(Response(400, [("Content-Length", "0")])) + server.send(EndOfMessage())
    assert b"Connection: close" in wire and server.must_close
    with pytest.raises(RemoteProtocolError):
        server.next_event()


def test_response_finished_before_request_body_resumes_after_body() -> None:
    server = Connection(Role.SERVER)
    events(server, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
    respond(server)
    assert [type(e) for e in events(server, b"cd" + GET)] == [Data, EndOfMessage, Request,
                                                               EndOfMessage]


def test_incomplete_body_at_eof_is_an_error_rfc9112_8() -> None:
    server = Connection(Role.SERVER)
    with pytest.raises(IncompleteMessage):
        events(server, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab", eof=True)


def test_body_limit_answers_413() -> None:
    server = Connection(Role.SERVER, limits=Limits(max_body_size=3))
    with pytest.raises(BodyTooLarge) as info:
        events(server, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n")
    assert info.value.status_hint == 413


def test_segregated_request_carries_options_and_connection_fields() -> None:
    server = Connection(Role.SERVER)
    evs = events(server, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Foo, close\r\nX-Foo: 1\r\n"
                         b"Keep-Alive: timeout=3\r\nX-End: 2\r\n\r\n")
    request = evs[0]
    assert isinstance(request, Request)
    assert request.headers.raw() == [(b"Host", b"a"), (b"X-End", b"2")]
    assert request.connection.options == {b"x-foo", b"close"}
    assert request.connection.keep_alive_params.timeout == 3
    assert request.connection.fields.get("x-foo") == b"1"


def test_leading_empty_lines_before_request_line_are_ignored_rfc9112_2_2() -> None:
    server = Connection(Role.SERVER)
    assert [type(e) for e in events(server, b"\r\n\r\n" + GET)] == [Request, EndOfMessage]


def test_clean_eof_between_requests_is_connection_closed() -> None:
    server = Connection(Role.SERVER)
    events(server, GET)
    respond(server)
    assert [type(e) for e in events(server, eof=True)] == [ConnectionClosed]


def test_content_sent_for_head_is_discarded_rfc9110_9_3_2() -> None:
    server = Connection(Role.SERVER)
    events(server, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    wire = server.send(Response(200, [("Content-Length", "5")]))
    wire += server.send(Data(b"hello")) + server.send(EndOfMessage())
    assert wire == b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert server.our_state is State.IDLE


def test_client_finishes_its_body_after_an_early_complete_response_rfc9112_9_5() -> None:
    """RFC 9112 §9.5: a server may answer before the request body is complete; a client
    that keeps sending it (the answer did not close) ends the request and may send again."""
    pair = ConnectionPair()
    pair.client_sends(Request("POST", "/", [("Host", "a"), ("Content-Length", "5")]),
                      Data(b"he"))
    assert [type(e) for e in pair.server_sends(
        Response(413, [("Content-Length", "0")]), EndOfMessage())] == [Response, EndOfMessage]
    assert pair.client.send(Data(b"llo")) == b"llo"
    assert pair.client.send(EndOfMessage()) == b""
    assert pair.client.our_state is State.IDLE and pair.client.can_send_request


def test_a_refused_response_leaves_the_connection_as_it_was() -> None:
    """``send`` promises: when it raises, nothing was written and the state is unchanged
    (here a malformed Content-Length, checked last, after the persistence decision)."""
    server = Connection(Role.SERVER)
    events(server, GET)
    with pytest.raises(FramingMismatch):
        server.send(Response(200, [("Content-Length", "x")],
                             connection=ConnectionInfo(options=["close"])))
    assert server.keep_alive and server.our_state is State.IDLE
    assert b"Connection: close" not in respond(server)
