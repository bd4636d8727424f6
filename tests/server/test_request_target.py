"""Request targets at the server's edge: absolute-form, CONNECT, and a bad request-line
refused as soon as it is complete (RFC 9112 §3, §3.2; RFC 9110 §4.2, §9.3.6)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.server.helpers import connect, read_until_close, running

pytestmark = pytest.mark.timeout(20)


async def echo_target(scope: Any, receive: Any, send: Any) -> None:
    """Answers with what the app saw of the target and Host, as JSON."""
    while (await receive())["type"] == "http.request":
        break
    hosts = [v.decode("latin-1") for n, v in scope["headers"] if n == b"host"]
    body = json.dumps({"method": scope["method"], "path": scope["path"],
                       "raw_path": scope["raw_path"].decode("latin-1"),
                       "query": scope["query_string"].decode("latin-1"),
                       "hosts": hosts}).encode()
    status = 403 if scope["method"] == "CONNECT" else 200
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def _exchange(raw: bytes, app: Any = echo_target, **config: Any) -> bytes:
    with running(app, **config) as server, connect(server) as sock:
        sock.sendall(raw)
        return read_until_close(sock)


def _json(data: bytes) -> dict[str, Any]:
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    result: dict[str, Any] = json.loads(body)
    return result


# --- absolute-form (RFC 9112 §3.2.2) ---------------------------------------------------------


def test_absolute_form_query_reaches_the_app_rfc9112_3_2_2() -> None:
    seen = _json(_exchange(b"GET http://h?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert (seen["path"], seen["raw_path"], seen["query"]) == ("/", "/", "q=1")


def test_absolute_form_authority_replaces_received_host_rfc9112_3_2_2() -> None:
    # "the origin server MUST ignore the received Host header field (if any) and instead use
    # the host information of the request-target"
    seen = _json(_exchange(b"GET http://b:8080/x/y?z HTTP/1.1\r\nHost: h\r\n"
                           b"Connection: close\r\n\r\n"))
    assert seen["hosts"] == ["b:8080"]
    assert (seen["path"], seen["query"]) == ("/x/y", "z")


@pytest.mark.parametrize(("target", "host", "path"), [
    (b"http://[::1]:8080/v6", "[::1]:8080", "/v6"),
    (b"http://h%41b/%7Euser", "h%41b", "/~user"),
    (b"HTTP://H:/up", "H:", "/up"),
], ids=["ipv6-literal", "percent-encoding", "upper-case-scheme-empty-port"])
def test_absolute_form_variants_rfc3986_3_2(target: bytes, host: str, path: str) -> None:
    seen = _json(_exchange(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert (seen["hosts"], seen["path"]) == ([host], path)


@pytest.mark.parametrize("target", [
    b"http:/admin", b"http:admin", b"http://h:8:0/x", b"http://u:p@h/x", b"http://@h/",
    b"http:///x", b"http://h:70000/", b"ftp://h/x",
], ids=["one-slash", "no-slash", "two-ports", "userinfo", "empty-userinfo", "empty-host",
        "port-too-big", "other-scheme"])
def test_invalid_absolute_form_gets_400_and_close_rfc9110_4_2(target: bytes) -> None:
    data = _exchange(b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"\r\nConnection: close\r\n" in data


# --- CONNECT (RFC 9110 §9.3.6) ---------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\n\r\n",
    b"CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\nContent-Length: 5\r\n\r\nhello",
    b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
], ids=["no-body", "with-body", "ipv6"])
def test_connect_is_answered_501_by_the_server_not_the_app_rfc9110_9_3_6(raw: bytes) -> None:
    called = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)
        await echo_target(scope, receive, send)

    data = _exchange(raw, app)
    assert data.startswith(b"HTTP/1.1 501 Not Implemented\r\n"), data
    assert b"\r\nConnection: close\r\n" in data
    assert data.endswith(b"CONNECT is not served here\n")
    assert not called


def test_connect_to_app_option_passes_connect_to_the_app_rfc9110_9_3_6() -> None:
    data = _exchange(b"CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\nConnection: close\r\n\r\n",
                     connect_to_app=True)
    assert data.startswith(b"HTTP/1.1 403 "), data
    assert b'"method": "CONNECT"' in data


def test_app_answering_connect_with_2xx_gets_500_not_an_empty_close_rfc9110_9_3_6() -> None:
    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    data = _exchange(b"CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\n\r\n", ok, connect_to_app=True)
    assert data.startswith(b"HTTP/1.1 500 "), data
    assert b"\r\nConnection: close\r\n" in data


def test_head_refused_by_the_core_is_a_500_not_a_cut_rfc9110_15_6_1() -> None:
    async def bad(scope: Any, receive: Any, send: Any) -> None:
        # RFC 9110 §8.6: a 204 MUST NOT carry Content-Length; the core refuses the head.
        await send({"type": "http.response.start", "status": 204,
                    "headers": [(b"content-length", b"2")]})

    data = _exchange(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", bad)
    assert data.startswith(b"HTTP/1.1 500 "), data


# --- a bad request-line is refused when its CRLF arrives (RFC 9112 §3) -------------------------


@pytest.mark.parametrize("raw", [
    b"GET /x HTTP/1.\x001\r\nHost: h\r\n\r",
    b"GET /c1686 ;HTTP/1.9\r\nHost: h\r\n",
    b"GET  /double-space HTTP/1.1\r\n",
    b"GET http:/admin HTTP/1.1\r\n",
], ids=["nul-in-version", "junk-before-version", "double-space", "absolute-form-one-slash"])
def test_bad_request_line_gets_400_before_the_head_ends_rfc9112_3(raw: bytes) -> None:
    with running(echo_target, header_timeout=10.0) as server, connect(server) as sock:
        start = time.monotonic()
        sock.sendall(raw)  # the head never ends: only the request-line can be judged
        data = read_until_close(sock, timeout=8)
        elapsed = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert elapsed < 2.0, f"answered after {elapsed:.1f} s (header timeout is 10 s)"


def test_http2_request_line_gets_505_before_the_head_ends_rfc9110_2_5() -> None:
    with running(echo_target, header_timeout=10.0) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/2.0\r\n")
        assert read_until_close(sock, timeout=8).startswith(b"HTTP/1.1 505 ")
