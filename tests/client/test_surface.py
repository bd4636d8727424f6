"""The client's surface as an httpx user reads it (issue 15): ``r.headers`` is a
case-insensitive multi-map, ``json=``, ``.json()``, ``.text`` in the declared charset,
``raise_for_status()``, ``follow_redirects`` with a limit and a history, HTTP/1.0.

Where httpx has the same API, the test asks httpx too and expects the same answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from onehop.client import (
    Client,
    HeaderMap,
    HTTPStatusError,
    RedirectBodyNotReplayable,
    Response,
    TooManyRedirects,
)
from onehop.client.redirects import next_hop, redirect_method
from onehop.core import Headers
from onehop.errors import LocalProtocolError

from .servers import Action, ScriptedServer, Seen, ok

httpx = pytest.importorskip("httpx")
pytestmark = pytest.mark.timeout(30)

RAW = [
    (b"Content-Type", b"text/plain; charset=utf-8"),
    (b"Set-Cookie", b"a=1"),
    (b"X-List", b"a, b"),
    (b"set-cookie", b"b=2"),
    (b"X-List", b", c"),
    (b"X-Empty", b""),
]


def both(raw: list[tuple[bytes, bytes]]) -> tuple[HeaderMap, Any]:
    return HeaderMap(Headers(raw)), httpx.Headers(raw)


# --- the headers mapping, against httpx.Headers -------------------------------------------------


@pytest.mark.parametrize("key", ["content-type", "Content-Type", "SET-COOKIE", "x-list", "x-empty"])
def test_lookup_is_case_insensitive_and_joins_repeated_lines_like_httpx_rfc9110_5_3(
    key: str,
) -> None:
    ours, theirs = both(RAW)
    assert ours[key] == theirs[key]
    assert ours.get(key) == theirs.get(key)
    assert ours.get_list(key) == theirs.get_list(key)
    assert (key in ours) is (key in theirs)


def test_split_commas_drops_empty_list_members_rfc9110_5_6_1() -> None:
    # "A recipient MUST accept and ignore empty list elements" (RFC 9110 §5.6.1): here
    # onehop departs from httpx, which keeps them as "" (documented in docs/client.md).
    ours, theirs = both(RAW)
    assert ours.get_list("x-list", split_commas=True) == ["a", "b", "c"]
    assert theirs.get_list("x-list", split_commas=True) == ["a", "b", "", "c"]
    assert ours.get_list("x-empty", split_commas=True) == []
    assert ours.get_list("set-cookie", split_commas=True) == theirs.get_list(
        "set-cookie", split_commas=True)


def test_missing_field_is_a_key_error_or_the_default_like_httpx() -> None:
    ours, theirs = both(RAW)
    with pytest.raises(KeyError):
        ours["x-missing"]
    with pytest.raises(KeyError):
        theirs["x-missing"]
    assert ours.get("x-missing") is None is theirs.get("x-missing")
    assert ours.get("x-missing", "d") == "d" == theirs.get("x-missing", "d")
    assert 1 not in ours


def test_iteration_keys_items_and_multi_items_are_httpx_s() -> None:
    ours, theirs = both(RAW)
    assert list(ours) == list(theirs)
    assert list(ours.keys()) == list(theirs.keys())
    assert list(ours.values()) == list(theirs.values())
    assert list(ours.items()) == list(theirs.items())
    assert ours.multi_items() == theirs.multi_items()
    assert len(ours) == len(theirs)
    assert dict(ours) == dict(theirs)
    assert ours.raw == theirs.raw == RAW
    assert ours == [(n.decode(), v.decode()) for n, v in RAW]


@pytest.mark.parametrize(("value", "encoding"), [
    (b"plain", "ascii"), (b"caf\xc3\xa9", "utf-8"), (b"caf\xe9", "iso-8859-1"),
])
def test_values_decode_as_ascii_then_utf8_then_latin1_like_httpx_rfc9110_5_5(
    value: bytes, encoding: str
) -> None:
    ours, theirs = both([(b"X-Name", value)])
    assert ours.encoding == encoding == theirs.encoding
    assert ours["x-name"] == theirs["x-name"] == value.decode(encoding)


async def test_response_headers_are_the_map_and_hop_by_hop_fields_stay_apart_rfc9110_7_6_1(
) -> None:
    def answer(seen: Seen) -> Action:
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: X-Hop\r\nX-Hop: 1\r\nX-Multi: a\r\nx-multi: b\r\n\r\n"
                b"2\r\nok\r\n0\r\n\r\n"), "keep"

    async with ScriptedServer(answer) as server, Client() as client:
        r = await client.get(server.url())
    assert r.headers["content-type"] == "text/plain" == r.headers["Content-Type"]
    assert r.headers.get_list("x-multi") == ["a", "b"]
    assert "transfer-encoding" not in r.headers and "x-hop" not in r.headers
    assert b"x-hop" in r.connection.options
    assert r.headers.raw == [(b"Content-Type", b"text/plain"), (b"X-Multi", b"a"),
                             (b"x-multi", b"b")]
    assert r.text == "ok"


# --- json=, .json(), .text, raise_for_status -----------------------------------------------------


def echo(seen: Seen) -> Action:
    return ok(seen.head + seen.body), "keep"


async def test_json_body_is_httpx_s_bytes_with_its_content_type_rfc8259() -> None:
    value = {"name": "café", "n": [1, 2.5, None, True]}
    async with ScriptedServer(echo) as server, Client() as client:
        await client.post(server.url("/j"), json=value)
        await client.put(server.url("/k"), json=[1], headers={"Content-Type": "application/x"})
    reference = httpx.Request("POST", server.url("/j"), json=value)
    first, second = server.seen
    assert first.body == reference.content
    assert b"\r\nContent-Type: application/json\r\n" in first.head
    assert b"\r\nContent-Type: application/x\r\n" in second.head  # the caller's type wins
    assert b"application/json" not in second.head


async def test_json_with_content_or_nan_is_refused_before_sending() -> None:
    async with ScriptedServer(echo) as server, Client() as client:
        with pytest.raises(TypeError, match="content or json"):
            await client.post(server.url(), content=b"x", json={})
        with pytest.raises(TypeError, match="JSON"):
            await client.post(server.url(), json=float("nan"))  # not JSON (RFC 8259 §6)
    assert server.seen == []


async def fetch(body: bytes, content_type: str | None) -> Response:
    """One GET answered with *body* and *content_type*, its body read."""
    extra = f"Content-Type: {content_type}\r\n" if content_type else ""

    def answer(seen: Seen) -> Action:
        return ok(body, extra), "keep"

    async with ScriptedServer(answer) as server, Client() as client:
        return await client.get(server.url())


async def test_json_method_parses_the_body() -> None:
    r = await fetch('{"a": [1, "é"]}'.encode(), "application/json")
    assert r.json() == {"a": [1, "é"]}
    with pytest.raises(json.JSONDecodeError):
        (await fetch(b"not json", "application/json")).json()


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/plain; charset=iso-8859-1", b"caf\xe9"),
    ('text/plain; charset="ISO-8859-1"', b"caf\xe9"),
    ("text/plain; format=flowed; charset=utf-16", "café".encode("utf-16")),
    ("text/plain", "café".encode()),
    ("text/plain; charset=no-such-codec", "café".encode()),
    (None, b"caf\xe9 \xff"),
])
async def test_text_decodes_with_the_declared_charset_like_httpx_rfc9110_8_3_2(
    content_type: str | None, body: bytes
) -> None:
    r = await fetch(body, content_type)
    headers = {"Content-Type": content_type} if content_type else {}
    reference = httpx.Response(200, headers=headers, content=body)
    assert r.text == reference.text
    assert r.charset_encoding == reference.charset_encoding


@pytest.mark.parametrize("status", [200, 204, 301, 404, 503])
async def test_raise_for_status_raises_for_all_but_2xx_like_httpx(status: int) -> None:
    def answer(seen: Seen) -> Action:
        return f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode(), "keep"

    async with ScriptedServer(answer) as server, Client() as client:
        r = await client.get(server.url("/s"))
    reference = httpx.Response(status, request=httpx.Request("GET", server.url("/s")))
    try:
        reference.raise_for_status()
        httpx_raised = False
    except httpx.HTTPStatusError:
        httpx_raised = True
    if not httpx_raised:
        assert r.raise_for_status() is r
        assert r.is_success
        return
    with pytest.raises(HTTPStatusError, match=f"'{status} X' for url '{server.url('/s')}'") as e:
        r.raise_for_status()
    assert e.value.response is r
    assert r.is_error is (status >= 400)


async def test_elapsed_covers_the_exchange() -> None:
    async with ScriptedServer(echo, delay=0.05) as server, Client() as client:
        r = await client.get(server.url())
    assert timedelta(seconds=0.05) <= r.elapsed < timedelta(seconds=5)


# --- redirects (RFC 9110 §15.4) ---------------------------------------------------------------


def redirecting(seen: Seen) -> Action:
    """``/<status>`` redirects to ``/end``; ``/chain/N`` N times; ``/loop`` forever."""
    path = seen.path
    if path.startswith("/chain/"):
        left = int(path.rsplit("/", 1)[1])
        if left:
            return _redirect(302, f"/chain/{left - 1}"), "keep"
    if path == "/loop":
        return _redirect(302, "/loop"), "keep"
    if path == "/relative/a/b":
        return _redirect(301, "../c?x=1#frag"), "keep"
    if path == "/no-location":
        return b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", "keep"
    if path[1:].isdigit():
        return _redirect(int(path[1:]), "/end"), "keep"
    return ok(f"{seen.method} {path} {seen.body.decode()}".encode()), "keep"


def _redirect(status: int, location: str) -> bytes:
    body = b"moved"
    return (f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: {len(body)}"
            "\r\n\r\n").encode() + body


async def test_redirects_are_not_followed_unless_asked_like_httpx() -> None:
    async with ScriptedServer(redirecting) as server, Client() as client:
        r = await client.get(server.url("/302"))
        followed = await client.get(server.url("/302"), follow_redirects=True)
    assert (r.status_code, r.is_redirect, r.history) == (302, True, [])
    assert followed.status_code == 200 and followed.text == "GET /end "


async def test_redirect_chain_keeps_its_history_and_one_connection_rfc9110_15_4() -> None:
    async with ScriptedServer(redirecting) as server, Client(follow_redirects=True) as client:
        r = await client.get(server.url("/chain/3"))
    assert r.text == "GET /chain/0 "
    assert [h.url for h in r.history] == [server.url(f"/chain/{n}") for n in (3, 2, 1)]
    assert [h.status_code for h in r.history] == [302] * 3
    assert all(h.content == b"moved" for h in r.history)  # read, so the connection stayed clean
    assert r.url == server.url("/chain/0")
    assert server.connections == 1


@pytest.mark.parametrize(("status", "method", "expected"), [
    (301, "POST", "GET"), (302, "POST", "GET"), (303, "POST", "GET"), (303, "PUT", "GET"),
    (303, "HEAD", "HEAD"), (302, "PUT", "PUT"), (301, "DELETE", "DELETE"),
    (307, "POST", "POST"), (308, "POST", "POST"), (307, "GET", "GET"),
])
def test_redirect_method_follows_rfc9110_15_4_and_the_browsers(
    status: int, method: str, expected: str
) -> None:
    assert redirect_method(status, method) == expected


@pytest.mark.parametrize("status", [301, 302, 303])
async def test_post_redirected_becomes_get_without_body_or_its_fields_rfc9110_15_4_4(
    status: int,
) -> None:
    async with ScriptedServer(redirecting) as server, Client(follow_redirects=True) as client:
        r = await client.post(server.url(f"/{status}"), content=b"payload",
                              headers={"Content-Type": "text/plain", "X-Keep": "1"})
    assert r.text == "GET /end "
    resent = server.seen[1].head.lower()
    assert b"content-type" not in resent and b"content-length" not in resent
    assert b"x-keep: 1" in resent


@pytest.mark.parametrize("status", [307, 308])
async def test_307_and_308_send_the_method_and_body_again_rfc9110_15_4_8(status: int) -> None:
    async with ScriptedServer(redirecting) as server, Client(follow_redirects=True) as client:
        r = await client.post(server.url(f"/{status}"), content=b"payload",
                              headers={"Content-Type": "text/plain"})
    assert r.text == "POST /end payload"
    assert b"\r\nContent-Type: text/plain\r\n" in server.seen[1].head


async def test_307_with_a_streamed_body_is_refused_not_resent_with_nothing() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"streamed"

    async with ScriptedServer(redirecting) as server, Client(follow_redirects=True) as client:
        with pytest.raises(RedirectBodyNotReplayable, match="stream") as e:
            await client.post(server.url("/307"), content=body())
    assert e.value.response.status_code == 307
    assert [s.path for s in server.seen] == ["/307"]


async def test_too_many_redirects_is_an_error_with_the_last_response_rfc9110_15_4() -> None:
    async with ScriptedServer(redirecting) as server, Client(
        follow_redirects=True, max_redirects=3
    ) as client:
        with pytest.raises(TooManyRedirects, match="more than 3 redirects") as e:
            await client.get(server.url("/loop"))
        r = await client.get(server.url("/chain/3"))  # exactly the limit is fine
    assert len(server.seen) == 4 + 4  # the first request and three redirects, then the chain
    assert e.value.response.status_code == 302 and len(e.value.response.history) == 3
    assert r.status_code == 200


async def test_relative_location_resolves_against_the_url_and_drops_the_fragment_rfc9110_10_2_2(
) -> None:
    async with ScriptedServer(redirecting) as server, Client(follow_redirects=True) as client:
        r = await client.get(server.url("/relative/a/b"))
    assert r.url == server.url("/relative/c?x=1")
    assert server.seen[1].path == "/relative/c?x=1"


async def test_redirect_without_location_is_the_final_answer() -> None:
    async with ScriptedServer(redirecting) as server, Client(follow_redirects=True) as client:
        r = await client.get(server.url("/no-location"))
    assert r.status_code == 302 and r.history == [] and not r.is_redirect


async def test_credentials_do_not_follow_a_redirect_to_another_origin_rfc9110_15_4() -> None:
    def to_other(seen: Seen) -> Action:
        return _redirect(302, other.url("/end")), "keep"

    async with ScriptedServer(echo) as other, ScriptedServer(to_other) as first, Client(
        headers={"Authorization": "Bearer client-wide"}, follow_redirects=True
    ) as client:
        await client.get(first.url("/go"), headers={"Cookie": "s=1", "X-Keep": "1",
                                                    "Host": f"127.0.0.1:{first.port}"})
        await client.get(first.url("/go"), headers={"Authorization": "Basic dTpw"})
    sent = [s.head.lower() for s in first.seen]
    assert all(b"authorization:" in head for head in sent)
    moved = [s.head.lower() for s in other.seen]
    assert all(b"authorization" not in head and b"cookie" not in head for head in moved)
    assert b"x-keep: 1" in moved[0]
    assert f"host: 127.0.0.1:{other.port}".encode() in moved[0]  # not the caller's Host


def test_credentials_stay_on_a_same_origin_redirect_and_an_https_upgrade() -> None:
    def origin(url: str) -> tuple[str, str, int]:
        scheme, rest = url.split("://")
        host = rest.split("/")[0]
        return scheme, host, {"http": 80, "https": 443}[scheme]

    def hop(url: str, location: str) -> frozenset[bytes]:
        got = next_hop(302, location, method="GET", url=url, origin=origin(url),
                       new_origin_of=origin)
        assert got is not None
        return got.drop

    assert b"authorization" not in hop("http://a.example/x", "/y")
    assert b"authorization" not in hop("http://a.example/x", "https://a.example/y")
    assert b"authorization" in hop("http://a.example/x", "http://b.example/y")
    assert b"authorization" in hop("https://a.example/x", "http://a.example/y")


# --- HTTP/1.0, field order, traces ------------------------------------------------------------


async def test_http10_client_asks_for_keep_alive_or_close_rfc9112_9_3() -> None:
    async with ScriptedServer(echo) as server:
        async with Client(http_version="1.0") as client:
            await client.get(server.url("/a"))
        async with Client(http_version="1.0", keep_alive=False) as client:
            await client.get(server.url("/b"))
    assert server.seen[0].head.startswith(b"GET /a HTTP/1.0\r\nHost: ")
    assert server.seen[0].head.endswith(b"\r\nConnection: keep-alive\r\n\r\n")
    assert server.seen[1].head.endswith(b"\r\nConnection: close\r\n\r\n")


async def test_http10_cannot_stream_a_body_of_unknown_length_rfc9112_7_1() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"x"

    async with ScriptedServer(echo) as server, Client(http_version="1.0") as client:
        with pytest.raises(LocalProtocolError, match=r"HTTP/1\.0 cannot carry chunked"):
            await client.post(server.url(), content=body())
    assert server.seen == []


async def test_host_goes_first_and_content_length_keeps_the_callers_place_rfc9112_3_2() -> None:
    async with ScriptedServer(echo) as server, Client(headers={"User-Agent": "t"}) as client:
        await client.post(server.url("/p"), content=b"hi", headers=[
            ("X-A", "1"), ("Content-Length", "999"), ("X-B", "2"), ("Host", "example.test")])
    assert server.seen[0].head == (b"POST /p HTTP/1.1\r\nHost: example.test\r\nUser-Agent: t\r\n"
                                   b"X-A: 1\r\nContent-Length: 2\r\nX-B: 2\r\n\r\n")


async def test_trace_shows_each_request_head_byte_for_byte_and_the_response_head() -> None:
    lines: list[str] = []
    async with ScriptedServer(echo) as server, Client(keep_alive=False,
                                                      trace=lines.append) as client:
        r = await client.get(server.url("/t"))
    sent = "".join(line[2:] + "\r\n" for line in lines if line.startswith("> "))
    assert sent.encode() == server.seen[0].head
    assert "> Connection: close" in lines
    assert "< HTTP/1.1 200 OK" in lines and lines[-1] == "< "
    assert r.status_code == 200
