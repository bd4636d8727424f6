"""HTTP/2 in ``onehop._aio``: the field rules of ``h2fields`` on their own, and the serving
endpoint's detection and stream driver with handlers written against the contract."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from onehop._aio import h2fields
from onehop._aio.endpoint import ServerEndpoint
from onehop._aio.h2fields import (
    UNSIZED_BODY,
    MalformedFields,
    outbound_fields,
    request_from_fields,
    trailers_from_fields,
)
from onehop._aio.handlers import Endpoint
from onehop._aio.serving import ServingConfig, ServingState
from onehop.core import ConnectionInfo, Data, EndOfMessage, Headers, Request, Response
from onehop.core.headers import NO_CONNECTION_INFO
from onehop.probe.h2wire import H2Wire

pytestmark = pytest.mark.timeout(30)

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test"),
       (b":path", b"/p?q")]


# --- h2fields ------------------------------------------------------------------------------


def test_request_from_fields_builds_an_http2_request_with_host_from_authority_rfc9113_8_3_1(
        ) -> None:
    request, protocol = request_from_fields([*GET, (b"accept", b"*/*")], ends_stream=True)
    assert (request.method, request.target, request.http_version) == (b"GET", b"/p?q", b"2")
    assert request.headers.raw() == [(b"host", b"a.test"), (b"accept", b"*/*")]
    assert request.connection is NO_CONNECTION_INFO and protocol is None


def test_content_without_a_length_is_framed_chunked_for_handlers_rfc9112_7_1() -> None:
    unsized, _ = request_from_fields(GET, ends_stream=False)
    sized, _ = request_from_fields([*GET, (b"content-length", b"3")], ends_stream=False)
    assert unsized.connection is UNSIZED_BODY
    assert sized.connection is NO_CONNECTION_INFO


def test_te_trailers_and_proxy_authorization_are_filed_as_connection_fields() -> None:
    request, _ = request_from_fields(
        [*GET, (b"te", b"trailers"), (b"proxy-authorization", b"Basic x")], ends_stream=True)
    assert request.connection.fields.raw() == [(b"proxy-authorization", b"Basic x"),
                                               (b"te", b"trailers")]
    assert b"te" not in request.headers


@pytest.mark.parametrize("name", [b"connection", b"keep-alive", b"proxy-connection",
                                  b"transfer-encoding", b"upgrade"])
def test_connection_specific_request_field_is_a_reset_rfc9113_8_2_2(name: bytes) -> None:
    with pytest.raises(MalformedFields) as caught:
        request_from_fields([*GET, (name, b"x")], ends_stream=True)
    assert caught.value.reset


def test_connect_takes_authority_alone_and_has_no_content_rfc9113_8_5() -> None:
    request, _ = request_from_fields([(b":method", b"CONNECT"), (b":authority", b"h:443")],
                                     ends_stream=False)
    assert request.target == b"h:443" and request.connection is NO_CONNECTION_INFO
    with pytest.raises(MalformedFields):
        request_from_fields([(b":method", b"CONNECT"), (b":authority", b"h:443"),
                             (b":path", b"/")], ends_stream=False)


EXTENDED = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
            (b":authority", b"a.test"), (b":path", b"/chat?room=1")]


def test_extended_connect_for_websocket_becomes_the_get_it_replaces_rfc8441_5() -> None:
    request, protocol = request_from_fields(
        [*EXTENDED, (b"sec-websocket-version", b"13"), (b"te", b"trailers")],
        ends_stream=False, extended_connect=True)
    assert protocol == b"websocket"
    assert (request.method, request.target, request.http_version) == (
        b"GET", b"/chat?room=1", b"2")
    assert request.connection.upgrade == [b"websocket"]  # (as RFC 6455 §4.1 would send it)
    assert request.connection.fields.raw() == [(b"upgrade", b"websocket"), (b"te", b"trailers")]
    assert request.headers.raw() == [(b"host", b"a.test"), (b"sec-websocket-version", b"13")]


def test_extended_connect_for_another_protocol_stays_a_connect_without_content_rfc8441_4(
        ) -> None:
    request, protocol = request_from_fields(
        [(n, b"connect-udp" if n == b":protocol" else v) for n, v in EXTENDED],
        ends_stream=False, extended_connect=True)
    assert protocol == b"connect-udp"
    assert (request.method, request.target) == (b"CONNECT", b"/chat?room=1")
    assert request.connection is NO_CONNECTION_INFO  # (its DATA is the protocol's, no body)


def test_protocol_is_a_reset_unless_the_setting_was_sent_rfc8441_3() -> None:
    with pytest.raises(MalformedFields) as caught:
        request_from_fields(EXTENDED, ends_stream=False)
    assert caught.value.reset
    for missing in (b":scheme", b":path", b":authority"):
        with pytest.raises(MalformedFields) as caught:
            request_from_fields([f for f in EXTENDED if f[0] != missing], ends_stream=False,
                                extended_connect=True)
        assert not caught.value.reset, missing  # (a 400: malformed, RFC 8441 §4)


def test_trailers_with_a_pseudo_header_or_connection_field_are_malformed() -> None:
    assert trailers_from_fields([(b"x-sum", b"1")]).raw() == [(b"x-sum", b"1")]
    with pytest.raises(MalformedFields):
        trailers_from_fields([(b":status", b"200")])
    with pytest.raises(MalformedFields) as caught:
        trailers_from_fields([(b"connection", b"close")])
    assert caught.value.reset


def test_outbound_fields_drop_the_connection_part_and_keep_trailer_rfc9113_8_2_2(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="onehop.http2")
    h2fields._logged.clear()
    conn = ConnectionInfo(["keep-alive", "x-hop"], [
        ("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "chunked"), ("X-Hop", "1"),
        ("Trailer", "x-sum"), ("TE", "trailers")])
    fields = outbound_fields(Headers([("Content-Type", "text/plain")]), conn, 200)
    assert fields == [(b":status", b"200"), (b"content-type", b"text/plain"),
                      (b"trailer", b"x-sum")]
    again = outbound_fields(Headers([]), conn, 204)
    assert again == [(b":status", b"204"), (b"trailer", b"x-sum")]
    logged = [r.getMessage().split(":")[1].split()[0] for r in caplog.records]
    assert sorted(logged) == ["connection", "keep-alive", "te", "transfer-encoding", "x-hop"]


# --- the endpoint with plain handlers -----------------------------------------------------


class Answer:
    """A request handler that answers at once: ``/boom`` raises in ``on_request``."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def on_request(self, endpoint: Endpoint, request: Request) -> Answer:
        if request.target == b"/boom":
            raise RuntimeError("a handler bug")
        core = endpoint.core
        body = b"v" + request.http_version
        out = core.send(Response(200, [(b"content-length", b"%d" % len(body))],
                                 connection=endpoint.response_connection()))
        out += core.send(Data(body)) + core.send(EndOfMessage())
        endpoint.finish(out)
        return self

    def on_closed(self) -> None:
        pass

    def on_body(self, data: bytes) -> None:
        pass

    def on_end(self, trailers: Headers) -> None:
        pass

    def on_writable(self) -> None:
        pass

    def on_eof(self) -> None:
        pass

    def on_lost(self) -> None:
        pass


@contextlib.contextmanager
def serving(**rules: Any) -> Iterator[int]:
    loop = asyncio.new_event_loop()
    state = ServingState(ServingConfig(**rules))
    server = loop.run_until_complete(loop.create_server(
        lambda: ServerEndpoint(state, Answer), "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        server.close()
        loop.close()


def test_a_handler_that_raises_costs_its_stream_a_500_not_the_connection() -> None:
    with serving() as port, H2Wire("127.0.0.1", port) as wire:
        failed = wire.get("/boom", "a")
        fine = wire.get("/ok", "a")
    assert failed.status == 500
    assert (fine.status, fine.body) == (200, b"v2")


def test_http1_request_split_after_its_first_byte_is_not_taken_for_the_preface() -> None:
    with serving() as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"P")
        sock.sendall(b"OST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
        data = sock.recv(1000)
        sock.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"v1.1")


def test_http_h11_sets_no_sniffing_and_http_h2_refuses_http1_with_505() -> None:
    assert not ServingConfig(http="h11").speaks_http2
    with serving(http="h2") as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        data = sock.recv(1000)
        sock.close()
    assert data.startswith(b"HTTP/1.1 505")
