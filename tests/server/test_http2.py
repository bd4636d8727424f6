"""HTTP/2 on ``onehop serve`` (RFC 9113), cleartext with prior knowledge, on the HTTP/1.1 port.

The raw client (:class:`onehop.probe.h2wire.H2Wire`, the ``h2`` library with its
validation off) sees every field as sent and can send malformed requests; curl,
nghttp, h2load and httpx are the real peers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from onehop.core import Limits
from onehop.probe.h2wire import H2Wire
from tests import browser
from tests.browser import needs_chromium
from tests.server.apps import RESOURCES, leaky_site
from tests.server.certs import Certs, make_certs
from tests.server.helpers import hello, running

pytestmark = pytest.mark.timeout(60)

CURL = shutil.which("curl") or "/usr/bin/curl"
NGHTTP = shutil.which("nghttp")
H2LOAD = shutil.which("h2load")
needs_nghttp = pytest.mark.skipif(NGHTTP is None or H2LOAD is None,
                                  reason="nghttp2-client (nghttp, h2load) not installed")

#: What RFC 9113 §8.2.2 calls connection-specific; none may reach an HTTP/2 peer.
CONNECTION_SPECIFIC = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                       "upgrade", "te"}
PROTOCOL_ERROR = 1
NO_ERROR = 0
REFUSED_STREAM = 7
INTERNAL_ERROR = 2


async def leaky(scope: Any, receive: Any, send: Any) -> None:
    """An app that sets every connection-specific field a careless app might, plus a
    field it nominates in Connection."""
    if scope["type"] != "http":
        return
    body = b"leaky " + scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/plain"), (b"connection", b"keep-alive, x-hop"),
        (b"keep-alive", b"timeout=5, max=100"), (b"transfer-encoding", b"chunked"),
        (b"x-hop", b"nominated"), (b"upgrade", b"h2c"), (b"proxy-connection", b"keep-alive"),
        (b"x-end", b"kept")]})
    await send({"type": "http.response.body", "body": body})


class Echo:
    """Answers with its scope and the body it read, as JSON; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        out = json.dumps({
            "http_version": scope["http_version"], "method": scope["method"],
            "path": scope["path"], "query": scope["query_string"].decode(),
            "scheme": scope["scheme"],
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "connection": [[k.decode(), v.decode()]
                           for k, v in scope["extensions"]["onehop.connection"]["fields"]],
            "body_length": len(body), "body_start": body[:16].decode("latin-1"),
        }).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]})
        await send({"type": "http.response.body", "body": out})


def _wire(server: Any, **kwargs: Any) -> H2Wire:
    return H2Wire("127.0.0.1", server.port, **kwargs)


def _authority(server: Any) -> str:
    return f"127.0.0.1:{server.port}"


# --- real clients --------------------------------------------------------------------------


def test_curl_prior_knowledge_and_http11_share_the_port_rfc9113_3_3() -> None:
    with running(hello) as server:
        url = f"http://127.0.0.1:{server.port}/x"
        h2 = subprocess.run([CURL, "-sS", "--http2-prior-knowledge", "-w", "|%{http_version}",
                             url], capture_output=True, timeout=10)
        h1 = subprocess.run([CURL, "-sS", "-w", "|%{http_version}", url], capture_output=True,
                            timeout=10)
    assert h2.stdout == b"GET /x|2", h2.stderr
    assert h1.stdout == b"GET /x|1.1", h1.stderr


def test_curl_sees_no_connection_specific_field_from_a_leaky_app_rfc9113_8_2_2() -> None:
    with running(leaky) as server:
        out = subprocess.run([CURL, "-sS", "-D-", "--http2-prior-knowledge",
                              f"http://127.0.0.1:{server.port}/page"], capture_output=True,
                             timeout=10)
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    names = {line.split(b":")[0].decode().lower() for line in head.split(b"\r\n")[1:]}
    assert head.startswith(b"HTTP/2 200"), out
    assert body == b"leaky /page"
    assert not names & (CONNECTION_SPECIFIC | {"x-hop"}), names
    assert "x-end" in names


@needs_nghttp
def test_nghttp_fetches_over_one_connection_rfc9113_5() -> None:
    with running(hello) as server:
        base = f"http://127.0.0.1:{server.port}"
        out = subprocess.run([NGHTTP, "-ns", f"{base}/a", f"{base}/b", f"{base}/c"],
                             capture_output=True, timeout=10, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("/a") + out.stdout.count("/b") + out.stdout.count("/c") >= 3


@needs_nghttp
def test_h2load_many_concurrent_streams_all_answered_rfc9113_5_1_2() -> None:
    with running(hello, access_log=False) as server:
        out = subprocess.run([H2LOAD, "-n", "2000", "-c", "4", "-m", "20",
                              f"http://127.0.0.1:{server.port}/"], capture_output=True,
                             timeout=30, text=True)
    assert "2000 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout
    assert "status codes: 2000 2xx" in out.stdout


def test_httpx_http2_prior_knowledge_and_a_streamed_upload_rfc9113_8_1() -> None:
    echo = Echo()

    def chunks() -> Any:
        for _ in range(64):
            yield b"x" * 4096

    with running(echo) as server, httpx.Client(http1=False, http2=True,
                                               base_url=f"http://127.0.0.1:{server.port}") as c:
        got = c.get("/q?a=1")
        posted = c.post("/upload", content=chunks())
    assert got.http_version == "HTTP/2"
    assert got.json()["http_version"] == "2"
    assert got.json()["query"] == "a=1"
    assert posted.json()["body_length"] == 64 * 4096
    # No Content-Length and no Transfer-Encoding: the app sees what the client sent.
    assert "transfer-encoding" not in dict(posted.json()["headers"])
    assert posted.json()["connection"] == []


def test_starlette_streaming_response_over_http2() -> None:
    async def stream(request: Any) -> StreamingResponse:
        async def gen() -> Any:
            for i in range(5):
                yield f"chunk{i};"
                await asyncio.sleep(0.01)
        return StreamingResponse(gen(), media_type="text/plain")

    app = Starlette(routes=[Route("/s", stream)])
    with running(app) as server, _wire(server) as wire:
        response = wire.get("/s", _authority(server))
    assert response.status == 200
    assert response.body == b"chunk0;chunk1;chunk2;chunk3;chunk4;"
    assert not set(response.names()) & CONNECTION_SPECIFIC


# --- the outbound rule ---------------------------------------------------------------------


def test_app_connection_fields_are_removed_and_logged_once_per_name_rfc9113_8_2_2(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="onehop.http2")
    from onehop._aio import h2fields
    h2fields._logged.clear()
    with running(leaky) as server, _wire(server) as wire:
        first = wire.get("/1", _authority(server))
        second = wire.get("/2", _authority(server))
    for response in (first, second):
        assert response.status == 200
        names = set(response.names())
        assert not names & (CONNECTION_SPECIFIC | {"x-hop"}), names
        assert response.get("x-end") == "kept"
        assert all(n == n.lower() for n in names)  # RFC 9113 §8.2.1
    removed = [r.getMessage().split(":")[1].split()[0] for r in caplog.records
               if "removed from a message sent" in r.getMessage()]
    assert sorted(removed) == sorted(
        ["connection", "keep-alive", "transfer-encoding", "x-hop", "upgrade",
         "proxy-connection"])
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "onehop.http2")


def test_head_response_carries_no_content_rfc9110_9_3_2() -> None:
    with running(hello) as server, _wire(server) as wire:
        response = wire.get("/h", _authority(server), method="HEAD")
    assert response.status == 200
    assert response.get("content-length") == "7"
    assert response.body == b""


# --- the inbound rule ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [
    ("connection", "keep-alive"), ("keep-alive", "timeout=5"), ("proxy-connection", "close"),
    ("transfer-encoding", "chunked"), ("upgrade", "websocket"), ("te", "gzip"),
])
def test_request_with_connection_specific_field_is_reset_protocol_error_rfc9113_8_2_2(
        name: str, value: str) -> None:
    echo = Echo()
    with running(echo) as server, _wire(server) as wire:
        bad = wire.get("/bad", _authority(server), fields=[(name, value)])
        good = wire.get("/good", _authority(server))  # the connection goes on
    assert bad.reset == PROTOCOL_ERROR
    assert bad.status is None  # no response: the stream error is the answer
    assert good.status == 200
    assert echo.calls == 1  # only the good request reached the app


def test_te_trailers_is_allowed_in_a_request_rfc9113_8_2_2() -> None:
    echo = Echo()
    with running(echo) as server, _wire(server) as wire:
        response = wire.get("/t", _authority(server), fields=[("te", "trailers")])
    assert response.status == 200
    assert ["te", "trailers"] in json.loads(response.body)["headers"]


@pytest.mark.parametrize(("fields", "why"), [
    ([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
      (b"X-Upper", b"1")], "upper-case name"),
    ([(b":method", b"GET"), (b":scheme", b"http")], "no :path"),
    ([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"a"),
      (b"host", b"b")], "Host differs from :authority"),
    ([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b"x", b"1"),
      (b":authority", b"a")], "pseudo-header after a regular field"),
    ([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
      (b":protocol", b"websocket")], ":protocol on a GET (RFC 8441 §4)"),
    ([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b"x", b" padded")],
     "whitespace around a value"),
])
def test_malformed_request_is_answered_400_and_the_connection_goes_on_rfc9113_8_1_1(
        fields: list[tuple[bytes, bytes]], why: str) -> None:
    echo = Echo()
    with running(echo) as server, _wire(server) as wire:
        bad = wire.wait(wire.send_headers(fields))
        good = wire.get("/good", _authority(server))
    assert bad.status == 400, why
    assert good.status == 200
    assert echo.calls == 1


def test_authority_becomes_host_and_cookie_crumbs_are_joined_rfc9113_8_3_1_8_2_3() -> None:
    with running(Echo()) as server, _wire(server) as wire:
        response = wire.get("/p%20q?x=1", "example.test:8443", fields=[
            ("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")])
    seen = json.loads(response.body)
    assert seen["http_version"] == "2"
    assert seen["path"] == "/p q"
    assert seen["headers"][0] == ["host", "example.test:8443"]
    assert ["cookie", "a=1; b=2"] in seen["headers"]
    assert [h for h in seen["headers"] if h[0] == "cookie"] == [["cookie", "a=1; b=2"]]


# --- flow control and bodies ---------------------------------------------------------------


def test_request_body_of_unknown_length_reaches_the_app_whole_rfc9113_8_1() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: sixteen times the stream's window
    with running(Echo()) as server, _wire(server) as wire:
        response = wire.get("/up", _authority(server), method="POST", body=body)
    seen = json.loads(response.body)
    assert seen["body_length"] == len(body)
    assert seen["connection"] == []


def test_response_waits_for_the_clients_window_and_the_app_waits_too_rfc9113_5_2() -> None:
    sent: list[int] = []

    async def big(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(64):
            await send({"type": "http.response.body", "body": b"%03d" % i + b"." * 16381,
                        "more_body": True})
            sent.append(i)
        await send({"type": "http.response.body", "body": b""})

    with running(big) as server, _wire(server) as wire:
        # The client takes 64 KiB (its default window) and acknowledges nothing yet.
        wire.conn.acknowledge_received_data = lambda *a: None  # type: ignore[method-assign]
        sid = wire.request("GET", "/big", _authority(server))
        wire.settle(0.5)
        held = len(wire.responses[sid].body)
        stalled_at = len(sent)
        del wire.conn.acknowledge_received_data  # acknowledge from now on
        wire.conn.increment_flow_control_window(4 * 1024 * 1024)
        wire.conn.increment_flow_control_window(4 * 1024 * 1024, sid)
        wire._flush()
        response = wire.wait(sid, timeout=10)
    assert held <= 65535  # RFC 9113 §6.9: no more than the window
    assert stalled_at < 16  # the app's send() waited (backpressure), it did not buffer 1 MiB
    assert len(response.body) == 64 * 16384
    assert response.ended


def test_expect_100_continue_gets_an_interim_response_first_rfc9110_10_1_1() -> None:
    with running(Echo()) as server, _wire(server) as wire:
        sid = wire.send_headers([(b":method", b"POST"), (b":scheme", b"http"),
                                 (b":path", b"/e"), (b":authority", b"a"),
                                 (b"expect", b"100-continue")], end=False)
        wire.settle(0.3)
        assert wire.responses[sid].informational == [[(b":status", b"100")]]
        assert wire.responses[sid].fields == []  # the final answer waits for the body
        wire.send_data(sid, b"payload")
        response = wire.wait(sid)
    assert json.loads(response.body)["body_length"] == 7


def test_client_reset_tells_the_app_it_left_rfc9113_6_4() -> None:
    told = threading.Event()

    async def waits(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive())["type"] != "http.disconnect":
            pass
        told.set()

    with running(waits) as server, _wire(server) as wire:
        sid = wire.send_headers([(b":method", b"POST"), (b":scheme", b"http"),
                                 (b":path", b"/w"), (b":authority", b"a")], end=False)
        wire.settle(0.2)
        wire.conn.reset_stream(sid, 8)  # CANCEL
        wire._flush()
        assert told.wait(5)


def test_app_failing_after_the_head_resets_the_stream_rfc9113_8_1() -> None:
    async def fails(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("boom")

    with running(fails) as server, _wire(server) as wire:
        response = wire.get("/f", _authority(server))
        again = wire.get("/g", _authority(server))
    assert response.reset == INTERNAL_ERROR
    assert again.reset == INTERNAL_ERROR  # (the connection is still usable)


# --- the endpoint's rules over HTTP/2 ------------------------------------------------------


def test_body_over_the_limit_is_413_on_its_stream_rfc9110_15_5_14() -> None:
    echo = Echo()
    with running(echo, limits=Limits(max_body_size=1000)) as server, _wire(server) as wire:
        declared = wire.get("/d", _authority(server), method="POST", body=b"x" * 2000,
                            fields=[("content-length", "2000")])
        streamed = wire.get("/s", _authority(server), method="POST", body=b"y" * 5000)
        good = wire.get("/g", _authority(server), method="POST", body=b"z" * 10)
    assert declared.status == 413 and streamed.status == 413
    assert good.status == 200 and json.loads(good.body)["body_length"] == 10


def test_stalled_request_body_is_408_on_its_stream() -> None:
    with running(Echo(), body_timeout=0.3) as server, _wire(server) as wire:
        sid = wire.send_headers([(b":method", b"POST"), (b":scheme", b"http"),
                                 (b":path", b"/slow"), (b":authority", b"a")], end=False)
        wire.send_data(sid, b"part", end=False)
        response = wire.wait(sid, timeout=5)
        good = wire.get("/g", _authority(server))
    assert response.status == 408
    assert good.status == 200  # one stream timed out; the connection goes on


def test_field_section_over_the_announced_limit_is_refused_rfc9113_6_5_2() -> None:
    echo = Echo()
    with running(echo, h2_max_header_list_size=4096) as server, _wire(server) as wire:
        wire.get("/", _authority(server))  # (our SETTINGS are acknowledged by now)
        big = wire.request("GET", "/big", _authority(server), fields=[("x-big", "v" * 8000)])
        wire.settle(0.5)
    assert wire.responses[big].status is None
    assert wire.goaway is not None or wire.responses[big].reset is not None
    assert echo.calls == 1



def test_rapid_reset_ends_the_connection_with_enhance_your_calm_cve_2023_44487() -> None:
    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(5)

    with running(slow, h2_max_concurrent_streams=10) as server, _wire(server) as wire:
        # Open and cancel, over and over: 2 x 10 streams is the limit. The client goes on
        # long after the GOAWAY: the server lingers (discarding), so its sends do not
        # fail and the GOAWAY is read, not lost to a reset.
        for _ in range(300):
            sid = wire.request("GET", "/", _authority(server))
            wire.conn.reset_stream(sid, 8)
            wire._flush()
        wire.settle(5.0)  # (returns once the connection closes)
    assert wire.goaway is not None and wire.goaway[1] == 0xB  # ENHANCE_YOUR_CALM
    assert wire.closed


def test_a_few_cancelled_streams_are_normal() -> None:
    with running(hello, h2_max_concurrent_streams=10) as server, _wire(server) as wire:
        for _ in range(5):
            sid = wire.request("GET", "/", _authority(server))
            wire.conn.reset_stream(sid, 8)
            wire._flush()
        assert wire.get("/after", _authority(server)).status == 200
    assert wire.goaway is None


def test_settings_announce_the_configured_limits_rfc9113_6_5_2() -> None:
    with running(hello, h2_max_concurrent_streams=7, h2_initial_window_size=1 << 20) as server, \
            _wire(server) as wire:
        wire.get("/", _authority(server))
    assert wire.remote_settings[3] == 7  # SETTINGS_MAX_CONCURRENT_STREAMS
    assert wire.remote_settings[4] == 1 << 20  # SETTINGS_INITIAL_WINDOW_SIZE
    assert wire.remote_settings[6] == 64 * 1024  # SETTINGS_MAX_HEADER_LIST_SIZE


def test_graceful_shutdown_sends_goaway_and_in_flight_streams_finish_rfc9113_6_8() -> None:
    started = threading.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        await asyncio.sleep(0.5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})

    with running(slow, timeout_graceful_shutdown=5) as server:
        wire = _wire(server)
        sid = wire.request("GET", "/slow", _authority(server))
        assert started.wait(5)
        server.stop()
        response = wire.wait(sid)
        wire.settle(1.0)
    assert response.status == 200 and response.body == b"finished"
    assert wire.goaway is not None and wire.goaway[0] >= sid and wire.goaway[1] == NO_ERROR
    assert wire.closed
    wire.close()


def test_streams_after_the_request_limit_are_refused_after_goaway_rfc9113_8_7() -> None:
    with running(hello, max_requests_per_connection=2) as server, _wire(server) as wire:
        first = wire.get("/1", _authority(server))
        second = wire.get("/2", _authority(server))
        wire.settle(0.2)
        goaway = wire.goaway
    assert first.status == second.status == 200
    assert goaway is not None and goaway[0] == 3  # the second stream was the last taken
    assert wire.closed


def test_idle_connection_gets_goaway_and_closes() -> None:
    with running(hello, timeout_keep_alive=0.3) as server, _wire(server) as wire:
        wire.get("/", _authority(server))
        wire.settle(1.5)
    assert wire.goaway == (1, NO_ERROR)
    assert wire.closed


def test_preface_without_a_request_is_closed_after_the_header_timeout() -> None:
    with running(hello, header_timeout=0.3) as server, _wire(server) as wire:
        wire.settle(1.5)
    assert wire.goaway is not None
    assert wire.closed


def test_preface_split_across_reads_is_still_recognised_rfc9113_3_4() -> None:
    with running(hello) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"PRI * HT")
        time.sleep(0.1)
        sock.sendall(b"TP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        data = sock.recv(100)
        sock.close()
    assert data[3] == 0x04  # the server's SETTINGS frame, not an HTTP/1.1 error


def test_limit_concurrency_answers_503_on_the_stream() -> None:
    release = threading.Event()

    async def hold(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while not release.is_set():
            await asyncio.sleep(0.02)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with running(hold, limit_concurrency=2) as server, _wire(server) as wire:
        first = wire.request("GET", "/1", _authority(server))
        second = wire.request("GET", "/2", _authority(server))
        third = wire.request("GET", "/3", _authority(server))
        refused = wire.wait(third)
        release.set()
        answers = [wire.wait(first).status, wire.wait(second).status]
    assert refused.status == 503
    assert answers == [200, 200] or sorted(answers) == [200, 503]


def test_http_h2_only_answers_http1_with_505_rfc9110_15_6_6() -> None:
    with running(hello, http="h2") as server:
        h1 = subprocess.run([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                             f"http://127.0.0.1:{server.port}/"], capture_output=True,
                            timeout=10)
        h2 = subprocess.run([CURL, "-sS", "--http2-prior-knowledge",
                             f"http://127.0.0.1:{server.port}/x"], capture_output=True,
                            timeout=10)
    assert h1.stdout == b"505"
    assert h2.stdout == b"GET /x"


def test_http_h11_only_does_not_take_the_preface() -> None:
    with running(hello, http="h11") as server:
        out = subprocess.run([CURL, "-sS", "--http2-prior-knowledge",
                              f"http://127.0.0.1:{server.port}/"], capture_output=True,
                             timeout=10)
    assert out.returncode != 0  # the preface got an HTTP/1.1 505, which curl cannot read


def test_invalid_http2_settings_are_refused_by_the_cli() -> None:
    from onehop.server import Config
    with pytest.raises(ValueError, match="max_concurrent_streams"):
        Config(app=hello, h2_max_concurrent_streams=0)
    with pytest.raises(ValueError, match="http must be one of"):
        Config(app=hello, http="spdy")


# --- TLS: ALPN h2 (RFC 9113 §3.2) ----------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _tls(certs: Certs, **kwargs: Any) -> dict[str, Any]:
    return {"ssl_certfile": certs.cert, "ssl_keyfile": certs.key, **kwargs}


def test_curl_negotiates_h2_by_alpn_and_http11_still_works_rfc9113_3_2(certs: Certs) -> None:
    with running(leaky_site, **_tls(certs)) as server:
        url = f"https://localhost:{server.port}/r/1"
        h2 = subprocess.run([CURL, "-sS", "-v", "-D-", "--cacert", certs.ca, url],
                            capture_output=True, text=True, timeout=20)
        h1 = subprocess.run([CURL, "-sS", "--http1.1", "-w", "|%{http_version}", "--cacert",
                             certs.ca, url], capture_output=True, text=True, timeout=20)
    assert "ALPN: server accepted h2" in h2.stderr
    head = h2.stdout.split("\r\n\r\n")[0].lower()
    assert head.startswith("http/2 200")
    assert not {line.split(":")[0] for line in head.split("\r\n")[1:]} & (
        CONNECTION_SPECIFIC | {"x-hop"})
    assert h1.stdout == "ok /r/1|1.1"


def test_raw_client_over_tls_sees_no_connection_specific_field_rfc9113_8_2_2(
        certs: Certs) -> None:
    with running(leaky_site, **_tls(certs)) as server, \
            _wire(server, tls=True, server_name="localhost") as wire:
        response = wire.get("/r/2", "localhost", scheme="https")
    assert response.status == 200 and response.body == b"ok /r/2"
    assert not set(response.names()) & (CONNECTION_SPECIFIC | {"x-hop"})


def test_httpx_and_nghttp_speak_h2_over_tls(certs: Certs) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=certs.ca)
    with running(Echo(), **_tls(certs)) as server:
        with httpx.Client(http2=True, verify=ctx) as client:
            got = client.get(f"https://localhost:{server.port}/hx")
        out = subprocess.run([NGHTTP or "nghttp", "-ns", f"https://localhost:{server.port}/n"],
                             capture_output=True, text=True, timeout=20) if NGHTTP else None
    assert got.http_version == "HTTP/2"
    assert got.json()["scheme"] == "https" and got.json()["http_version"] == "2"
    assert out is None or out.returncode == 0, out.stderr if out else ""


def test_alpn_offers_only_http11_with_http_h11_and_only_h2_with_http_h2(certs: Certs) -> None:
    def alpn(port: int) -> str:
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-alpn", "h2,http/1.1",
             "-servername", "localhost"], input=b"", capture_output=True, timeout=20)
        # (bytes: after an h2 handshake the server's SETTINGS frame is printed raw)
        for line in out.stdout.decode("latin-1").splitlines():
            if line.startswith(("ALPN protocol:", "No ALPN")):
                return line
        return out.stdout[-300:].decode("latin-1")

    with running(hello, **_tls(certs, http="h11")) as server:
        assert alpn(server.port) == "ALPN protocol: http/1.1"
    with running(hello, **_tls(certs, http="h2")) as server:
        assert alpn(server.port) == "ALPN protocol: h2"
    with running(hello, **_tls(certs)) as server:
        assert alpn(server.port) == "ALPN protocol: h2"


@needs_chromium
def test_chromium_loads_a_page_of_many_resources_over_h2_from_a_leaky_app(
        certs: Certs) -> None:
    with running(leaky_site, **_tls(certs), access_log=False) as server:
        verdict = browser.run(f"https://localhost:{server.port}/", "window.verdict",
                              timeout=30, extra_flags=["--ignore-certificate-errors"])
    assert verdict is not None, "the page did not finish loading"
    seen = json.loads(verdict)
    assert seen == {"ok": RESOURCES, "nav": "h2", "protocols": ["h2"]}, seen


def test_without_the_h2_package_http2_is_off_and_says_how_to_get_it() -> None:
    import sys

    blocked = "import sys; sys.modules['h2'] = None; "
    h2_only = subprocess.run(
        [sys.executable, "-c", blocked + "from onehop.cli import main; "
         "sys.exit(main(['serve', '--http', 'h2', 'tests.server.apps:app']))"],
        capture_output=True, text=True, timeout=20)
    assert h2_only.returncode == 2
    assert "pip install 'onehop[h2]'" in h2_only.stderr
    auto = subprocess.run(
        [sys.executable, "-c", blocked + "import logging; logging.basicConfig(); "
         "from onehop._aio.serving import ServingConfig; print(ServingConfig().speaks_http2)"],
        capture_output=True, text=True, timeout=20)
    assert auto.stdout.strip() == "False"
    assert "HTTP/2 is off: the h2 package is not installed" in auto.stderr


@pytest.mark.parametrize(("argv", "http"), [
    (["--http2"], "auto"),
    (["--http2", "--http", "h2"], "h2"),
    ([], "auto"),
    (["--http", "h11"], "h11"),
])
def test_uvicorns_http2_flag_means_http_auto_for_serve_and_proxy(argv: list[str],
                                                                   http: str) -> None:
    """A uvicorn command line with ``--http2`` works: HTTP/2 is on by default here."""
    from onehop.cli import build_parser
    from onehop.proxy.cli import build_config
    from onehop.server.cli import config_from_args

    parser = build_parser()
    serve = parser.parse_args(["serve", "tests.server.apps:app", *argv])
    assert config_from_args(serve).http == http
    proxy = parser.parse_args(["proxy", "--upstream", "http://127.0.0.1:9", *argv])
    assert build_config(proxy).http == http


@pytest.mark.parametrize(("configured", "argv", "http"), [
    ("h2", ["--http2"], "h2"),
    ("auto", ["--http2"], "auto"),
    ("h11", ["--http", "auto", "--http2"], "auto"),
])
def test_http2_flag_keeps_the_proxy_config_files_choice(tmp_path: Any, configured: str,
                                                       argv: list[str], http: str) -> None:
    """``--http2`` only asks that HTTP/2 stay on: a config file's ``h2`` (HTTP/2 only)
    stands, and ``--http`` given beside it wins over the file as usual."""
    from onehop.cli import build_parser
    from onehop.proxy.cli import build_config

    conf = tmp_path / "proxy.toml"
    conf.write_text(f'http = "{configured}"\n[upstreams]\napp = ["http://127.0.0.1:9"]\n')
    args = build_parser().parse_args(["proxy", "--config", str(conf), *argv])
    assert build_config(args).http == http


def test_http2_flag_against_a_config_file_http1_only_is_a_clear_error(tmp_path: Any) -> None:
    from onehop.cli import build_parser
    from onehop.proxy.cli import build_config
    from onehop.proxy.config import ConfigError

    conf = tmp_path / "proxy.toml"
    conf.write_text('http = "h11"\n[upstreams]\napp = ["http://127.0.0.1:9"]\n')
    args = build_parser().parse_args(["proxy", "--config", str(conf), "--http2"])
    with pytest.raises(ConfigError, match="--http2 contradicts the config file's http h11"):
        build_config(args)


def test_http2_with_an_http1_only_choice_is_a_clear_error() -> None:
    from onehop.cli import build_parser
    from onehop.proxy.cli import build_config
    from onehop.proxy.config import ConfigError
    from onehop.server.cli import config_from_args

    parser = build_parser()
    with pytest.raises(ValueError, match="--http2 contradicts --http h11"):
        config_from_args(parser.parse_args(["serve", "x:y", "--http2", "--http", "h11"]))
    with pytest.raises(ConfigError, match="--http2 contradicts --http httptools"):
        build_config(parser.parse_args(["proxy", "--upstream", "http://127.0.0.1:9",
                                        "--http2", "--http", "httptools"]))
