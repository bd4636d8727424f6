"""Optional pipelining (RFC 9112 §9.3.2) against the scripted fault server.

Each test counts the TCP connections the server saw and checks that every
request was answered exactly once, or failed with its cause named, and that
none was sent twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from onehop.client import Client, PipelinedRequestUnanswered

from .servers import Action, ScriptedServer, Seen, ok

pytestmark = pytest.mark.timeout(20)


def keep(seen: Seen) -> Action:
    return ok(seen.path.encode()), "keep"


def close_after_second(extra: str) -> object:
    def script(seen: Seen) -> Action:
        if seen.conn == 1 and seen.index == 1:
            return ok(seen.path.encode(), extra), "close"
        return ok(seen.path.encode()), "keep"

    return script


async def test_requests_are_pipelined_on_one_connection_and_answered_in_order_rfc9112_9_3_2() -> None:  # noqa: E501
    lines: list[str] = []
    async with ScriptedServer(keep, delay=0.01) as server, Client(
        pipeline=8, trace=lines.append
    ) as client:
        rs = await asyncio.gather(*(client.get(server.url(f"/{i}")) for i in range(6)))
        again = await client.get(server.url("/later"))
    assert [r.content for r in rs] == [f"/{i}".encode() for i in range(6)]
    assert again.reused
    assert server.connections == 1
    assert any("pipelined, 6 in flight" in line for line in lines)


@pytest.mark.parametrize("extra", ["Connection: close\r\n", ""], ids=["close-option", "bare-fin"])
async def test_unanswered_idempotent_requests_are_resent_after_close_mid_pipeline_rfc9112_9_3_2(
    extra: str,
) -> None:
    async with ScriptedServer(close_after_second(extra)) as server, Client(  # type: ignore[arg-type]
        pipeline=8
    ) as client:
        rs = await asyncio.gather(*(client.get(server.url(f"/{i}")) for i in range(6)))
    assert [r.content for r in rs] == [f"/{i}".encode() for i in range(6)]
    assert server.connections == 2
    assert client.pool.connections_opened == 2
    assert sorted(server.answered()) == sorted(f"/{i}" for i in range(6))
    assert Counter(s.path for s in server.seen).most_common(1)[0][1] == 1  # none sent twice
    assert [(s.conn, s.path) for s in server.seen[:2]] == [(1, "/0"), (1, "/1")]


async def test_unanswered_post_behind_close_fails_naming_the_cause_and_is_not_resent_rfc9112_9_3_2() -> None:  # noqa: E501
    async with ScriptedServer(close_after_second("Connection: close\r\n")) as server, Client(  # type: ignore[arg-type]
        pipeline=8
    ) as client:
        results = await asyncio.gather(
            client.get(server.url("/0")),
            client.get(server.url("/1")),
            client.post(server.url("/2"), content=b"pay"),
            client.get(server.url("/3")),
            return_exceptions=True,
        )
    a, b, post, d = results
    assert isinstance(post, PipelinedRequestUnanswered)
    assert "Connection: close" in str(post) and "POST is not idempotent" in str(post)
    assert [r.content for r in (a, b, d)] == [b"/0", b"/1", b"/3"]  # type: ignore[union-attr]
    assert server.connections == 2
    assert sorted(server.answered()) == ["/0", "/1", "/3"]
    assert [s.method for s in server.seen].count("POST") == 0  # never read, never resent


async def test_pipelining_is_off_by_default_and_per_origin() -> None:
    async with ScriptedServer(keep, delay=0.02) as a, ScriptedServer(keep, delay=0.02) as b:
        client = Client(pipeline={f"http://127.0.0.1:{a.port}": 4})
        async with client:
            await asyncio.gather(*(client.get(a.url(f"/{i}")) for i in range(4)))
            await asyncio.gather(*(client.get(b.url(f"/{i}")) for i in range(4)))
    assert a.connections == 1
    assert b.connections == 4
