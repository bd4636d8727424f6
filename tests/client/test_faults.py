"""The client against a scripted raw-socket server that injects faults.

Every test counts the TCP connections the server saw and checks that each
request was answered exactly once (no request lost, none sent twice).
"""

from __future__ import annotations

import asyncio

import pytest

from onehop.client import Client, ServerClosedIdle
from onehop.errors import HopByHopInHeaders, IncompleteMessage

from .servers import Action, ScriptedServer, Seen, ok

pytestmark = pytest.mark.timeout(20)


def keep(seen: Seen) -> Action:
    return ok(seen.path.encode()), "keep"


async def test_persistent_connection_is_reused_for_later_requests_rfc9112_9_3() -> None:
    async with ScriptedServer(keep) as server, Client() as client:
        responses = [await client.get(server.url(f"/{i}")) for i in range(5)]
    assert [r.content for r in responses] == [f"/{i}".encode() for i in range(5)]
    assert [r.reused for r in responses] == [False, True, True, True, True]
    assert server.connections == 1


async def test_idle_connection_closed_by_server_is_discarded_before_reuse_rfc9112_9_3_1() -> None:
    def answer_then_close(seen: Seen) -> Action:
        return ok(), "close"  # no Connection: close: the server just goes away when idle

    lines: list[str] = []
    async with ScriptedServer(answer_then_close) as server, Client(trace=lines.append) as client:
        first = await client.get(server.url("/a"))
        await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
        second = await client.get(server.url("/b"))
    assert (first.reused, second.reused) == (False, False)
    assert server.connections == 2
    assert server.answered() == ["/a", "/b"]
    assert not any("retrying" in line for line in lines)


def close_second_request_unanswered(seen: Seen) -> Action:
    """Answer the first request on a connection; close on the second, as if idle-timed-out."""
    if seen.index == 1:
        return b"", "close"
    return ok(seen.path.encode()), "keep"


async def test_idempotent_request_on_reused_connection_closed_unanswered_is_retried_once_rfc9112_9_3_1() -> None:  # noqa: E501
    async with ScriptedServer(close_second_request_unanswered) as server, Client() as client:
        await client.get(server.url("/a"))
        retried = await client.get(server.url("/b"))
    assert retried.content == b"/b"
    assert retried.reused is False  # the retry ran on a fresh connection
    assert server.connections == 2
    assert server.answered() == ["/a", "/b"]


async def test_post_on_reused_connection_closed_unanswered_is_not_retried_rfc9112_9_3_1() -> None:
    async with ScriptedServer(close_second_request_unanswered) as server, Client() as client:
        await client.get(server.url("/a"))
        with pytest.raises(ServerClosedIdle, match="not idempotent"):
            await client.post(server.url("/b"), content=b"pay")
    assert server.connections == 1
    assert [(s.method, s.path) for s in server.seen] == [("GET", "/a"), ("POST", "/b")]


async def test_post_with_idempotency_key_is_retried_after_idle_close_rfc9112_9_3_1() -> None:
    async with ScriptedServer(close_second_request_unanswered) as server, Client() as client:
        await client.get(server.url("/a"))
        r = await client.post(
            server.url("/b"), content=b"pay", headers={"Idempotency-Key": "k1"}
        )
    assert r.content == b"/b"
    assert server.connections == 2
    assert [s.body for s in server.seen if s.method == "POST"] == [b"pay", b"pay"]
    assert server.answered() == ["/a", "/b"]


async def test_reset_mid_response_is_an_error_and_not_resent_rfc9112_8() -> None:
    def partial_then_reset(seen: Seen) -> Action:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part", "reset"

    async with ScriptedServer(partial_then_reset) as server, Client() as client:
        with pytest.raises(IncompleteMessage):
            await client.get(server.url("/x"))
    assert server.connections == 1
    assert len(server.seen) == 1


async def test_close_option_ends_connection_after_response_rfc9112_9_6() -> None:
    def close_each(seen: Seen) -> Action:
        return ok(extra="Connection: close\r\n"), "close"

    async with ScriptedServer(close_each) as server, Client() as client:
        first = await client.get(server.url("/a"))
        second = await client.get(server.url("/b"))
    assert first.connection.close
    assert first.close_reason == "server sent Connection: close"
    assert second.reused is False
    assert server.connections == 2
    assert server.answered() == ["/a", "/b"]


async def test_keep_alive_timeout_hint_stops_reuse_before_the_server_closes_rfc7230_a_1_2() -> None:
    lines: list[str] = []
    async with ScriptedServer(
        lambda s: (ok(extra="Keep-Alive: timeout=1\r\n"), "keep"), idle_close_after=1.0
    ) as server, Client(trace=lines.append) as client:
        a = await client.get(server.url("/a"))
        b = await client.get(server.url("/b"))  # well within the hint: reused
        await asyncio.sleep(0.85)  # inside timeout=1, past timeout minus the margin
        c = await client.get(server.url("/c"))
    assert (a.reused, b.reused, c.reused) == (False, True, False)
    assert server.connections == 2
    assert [s.conn for s in server.seen] == [1, 1, 2]
    assert server.answered() == ["/a", "/b", "/c"]
    assert any("keep-alive limit" in line for line in lines)
    assert not any("retrying" in line for line in lines)


async def test_keep_alive_max_zero_means_no_further_request_rfc7230_a_1_2() -> None:
    def countdown(seen: Seen) -> Action:
        return ok(extra=f"Keep-Alive: timeout=5, max={1 - seen.index}\r\n"), "keep"

    async with ScriptedServer(countdown) as server, Client() as client:
        rs = [await client.get(server.url(f"/{i}")) for i in range(3)]
    assert [r.reused for r in rs] == [False, True, False]
    assert rs[1].close_reason == "server's Keep-Alive limit reached"
    assert server.connections == 2


async def test_http10_response_without_keep_alive_closes_and_body_reads_to_eof_rfc9112_9_3() -> None:  # noqa: E501
    def http10(seen: Seen) -> Action:
        return b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close", "close"

    async with ScriptedServer(http10) as server, Client() as client:
        a = await client.get(server.url("/a"))
        b = await client.get(server.url("/b"))
    assert (a.content, b.content) == (b"until-close", b"until-close")
    assert a.http_version == "1.0"
    assert (a.reused, b.reused) == (False, False)
    assert server.connections == 2


async def test_http10_response_with_keep_alive_persists_rfc9112_9_3() -> None:
    def http10_ka(seen: Seen) -> Action:
        return b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "keep"

    async with ScriptedServer(http10_ka) as server, Client() as client:
        rs = [await client.get(server.url("/")) for _ in range(3)]
    assert [r.reused for r in rs] == [False, True, True]
    assert server.connections == 1


async def test_client_without_keep_alive_sends_close_option_rfc9112_9_6() -> None:
    async with ScriptedServer(keep) as server, Client(keep_alive=False) as client:
        r1 = await client.get(server.url("/a"))
        r2 = await client.get(server.url("/b"))
    assert b"Connection: close" in server.seen[0].head
    assert r1.close_reason == "client sent Connection: close"
    assert (r1.reused, r2.reused) == (False, False)
    assert server.connections == 2


async def test_unlisted_hop_by_hop_field_is_rejected_not_sent_rfc9110_7_6_1() -> None:
    async with ScriptedServer(keep) as server, Client() as client:
        with pytest.raises(HopByHopInHeaders, match="Keep-Alive"):
            await client.get(server.url("/"), headers={"Keep-Alive": "timeout=5"})
        await client.get(server.url("/"), headers={"Connection": "X-Hop", "X-Hop": "1"})
    assert len(server.seen) == 1
    assert b"X-Hop: 1" in server.seen[0].head
    assert b"connection: x-hop\r\n" in server.seen[0].head.lower()


async def test_streamed_request_body_is_sent_chunked_rfc9112_7_1() -> None:
    async def parts():  # type: ignore[no-untyped-def]
        yield b"ab"
        yield b"cd"

    async with ScriptedServer(lambda s: (ok(s.body), "keep")) as server, Client() as client:
        r = await client.post(server.url("/up"), content=parts())
    assert r.content == b"abcd"
    assert b"Transfer-Encoding: chunked" in server.seen[0].head


async def test_streamed_response_body_arrives_in_pieces_and_connection_is_reused_rfc9112_9_3() -> None:  # noqa: E501
    body = b"y" * 200_000
    async with ScriptedServer(lambda s: (ok(body), "keep")) as server, Client() as client:
        async with client.stream("GET", server.url("/big")) as r:
            got = b"".join([c async for c in r.aiter_bytes()])
        again = await client.get(server.url("/big"))
    assert got == body and again.content == body
    assert again.reused
    assert server.connections == 1


async def test_response_closed_before_body_read_is_not_reused_rfc9112_9_3() -> None:
    async with ScriptedServer(lambda s: (ok(b"z" * 10), "keep")) as server, Client() as client:
        async with client.stream("GET", server.url("/a")):
            pass
        r = await client.get(server.url("/b"))
    assert r.reused is False
    assert server.connections == 2
