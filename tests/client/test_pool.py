"""The pool's limits, order and reuse, counted directly (STYLE: counting mistakes hide there)."""

from __future__ import annotations

import asyncio

import pytest

from onehop.client import Client, PoolTimeout, Timeout

from .servers import Action, ScriptedServer, Seen, ok

pytestmark = pytest.mark.timeout(20)


def echo(seen: Seen) -> Action:
    return ok(seen.path.encode()), "keep"


async def test_per_origin_limit_caps_concurrent_connections() -> None:
    async with ScriptedServer(echo, delay=0.05) as server, Client(max_per_origin=2) as client:
        rs = await asyncio.gather(*(client.get(server.url(f"/{i}")) for i in range(8)))
        assert client.pool.total == 2
        assert client.pool.idle_count() == 2
    assert sorted(r.content for r in rs) == sorted(f"/{i}".encode() for i in range(8))
    assert server.connections == 2
    assert server.max_open == 2
    assert sorted(server.answered()) == sorted(f"/{i}" for i in range(8))


async def test_total_limit_spans_origins_and_evicts_idle_of_other_origin() -> None:
    async with (
        ScriptedServer(echo, delay=0.02) as a,
        ScriptedServer(echo, delay=0.02) as b,
        Client(max_connections=1, max_per_origin=5) as client,
    ):
        await asyncio.gather(*(client.get(s.url(f"/{i}")) for i in range(3) for s in (a, b)))
        assert client.pool.total <= 1
        await client.get(a.url("/again"))
        assert client.pool.total == 1
    assert a.max_open + b.max_open <= 2
    assert len(a.answered()) == 4 and len(b.answered()) == 3


async def test_waiters_are_served_in_arrival_order() -> None:
    async with ScriptedServer(echo, delay=0.01) as server, Client(max_per_origin=1) as client:
        tasks = []
        for i in range(6):
            tasks.append(asyncio.create_task(client.get(server.url(f"/{i}"))))
            await asyncio.sleep(0)  # make arrival order explicit
        await asyncio.gather(*tasks)
    assert [s.path for s in server.seen] == [f"/{i}" for i in range(6)]
    assert server.connections == 1


async def test_idle_connections_are_reused_newest_first() -> None:
    async with ScriptedServer(echo) as server, Client() as client:
        async with client.stream("GET", server.url("/a")) as ra, \
                client.stream("GET", server.url("/b")) as rb:
            await ra.aread()  # released first: older idle
            await rb.aread()  # released last: newest idle
        r = await client.get(server.url("/c"))
    assert r.reused and r.connection_id == rb.connection_id
    assert server.connections == 2


async def test_pool_timeout_when_limit_reached_and_nothing_returns() -> None:
    async with ScriptedServer(echo) as server, Client(
        max_per_origin=1, timeout=Timeout(pool=0.1)
    ) as client:
        async with client.stream("GET", server.url("/held")):
            with pytest.raises(PoolTimeout):
                await client.get(server.url("/waits"))
        assert client.pool.waiting == 0
        r = await client.get(server.url("/after"))
    assert r.content == b"/after"
    assert server.connections == 2  # the held stream was closed unread


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    async with ScriptedServer(echo, delay=0.05) as server, Client(max_per_origin=1) as client:
        first = asyncio.create_task(client.get(server.url("/1")))
        await asyncio.sleep(0)
        second = asyncio.create_task(client.get(server.url("/2")))
        await asyncio.sleep(0.01)
        second.cancel()
        await first
        with pytest.raises(asyncio.CancelledError):
            await second
        assert client.pool.total == 1
        await client.get(server.url("/3"))
        assert client.pool.total == 1
    assert server.answered() == ["/1", "/3"]


async def test_replaced_default_headers_reach_the_next_request() -> None:
    # Requests without headers of their own are built once per (method, target, Host);
    # replacing ``client.headers`` must still show on the wire.
    from onehop.core import Headers

    async with ScriptedServer(echo) as server, Client(headers={"X-A": "1"}) as client:
        await client.get(server.url("/a"))
        await client.get(server.url("/a"))
        client.headers = Headers([("X-A", "2")])
        await client.get(server.url("/a"))
    heads = [s.head for s in server.seen]
    assert [b"X-A: 1" in h for h in heads] == [True, True, False]
    assert b"X-A: 2" in heads[2]
    assert all(h.count(b"Host: ") == 1 for h in heads)
