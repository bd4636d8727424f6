"""The pool's idle sweep: expired idle connections close on a timer, not at the next request.

RFC 7230 §A.1.2: ``Keep-Alive: timeout`` is how long the server keeps an idle
connection; RFC 9112 §9.3.1/§9.8: either side may close an idle connection at
any time. The client closes its own idle sockets once past the client's idle
limit or the server's hint (minus a margin), so it never holds a socket the
server is about to close. Every test counts, on the server side, the
connections still open, with no new request sent after the first ones.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from onehop.client import Client
from onehop.client.connection import usable_keep_alive
from onehop.client.pool import SWEEP_SLACK

from .servers import Action, ScriptedServer, Seen, ok

pytestmark = pytest.mark.timeout(20)

#: How late after its expiry a connection may still be open (timer + loop + FIN), with
#: room for a loaded machine.
BOUND = 1.0


def keep(seen: Seen) -> Action:
    return ok(seen.path.encode()), "keep"


async def _until_closed(server: ScriptedServer, start: float, limit: float) -> float:
    """Wait until the server sees no open connection; return seconds since *start*."""
    while server.open_now:
        assert time.monotonic() - start < limit, "connection still open"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_idle_connection_past_client_idle_limit_is_closed_without_a_new_request_rfc9112_9_3_1() -> None:  # noqa: E501
    lines: list[str] = []
    async with ScriptedServer(keep) as server, Client(idle_timeout=0.6,
                                                      trace=lines.append) as client:
        await client.get(server.url("/a"))
        start = time.monotonic()
        assert client.pool.total == 1 and client.pool.sweep_armed
        await asyncio.sleep(0.2)
        assert server.open_now == 1  # not before its expiry (less the sweep's slack)
        took = await _until_closed(server, start, 0.6 + BOUND)
        assert client.pool.total == 0 and client.pool.idle_count() == 0
        assert not client.pool.sweep_armed  # nothing idle: the timer is not re-armed
    assert took >= 0.6 - SWEEP_SLACK
    assert server.connections == 1 and len(server.seen) == 1
    assert any("idle past the keep-alive limit (idle sweep)" in line for line in lines)


async def test_keep_alive_timeout_hint_closes_idle_connection_before_the_server_does_rfc7230_a_1_2() -> None:  # noqa: E501
    # The server says timeout=2 but would really wait 10 s: the close must be the client's.
    async with ScriptedServer(
        lambda s: (ok(extra="Keep-Alive: timeout=2\r\n"), "keep"), idle_close_after=10
    ) as server, Client() as client:
        await client.get(server.url("/a"))
        start = time.monotonic()
        took = await _until_closed(server, start, 2.0)
        assert client.pool.total == 0
    assert usable_keep_alive(2) == 1.5
    assert 1.5 - SWEEP_SLACK <= took < 2.0  # before the timeout the server announced
    assert server.connections == 1


async def test_connection_reused_before_expiry_survives_the_sweep_and_closes_later() -> None:
    async with ScriptedServer(keep) as server, Client(idle_timeout=1.0) as client:
        await client.get(server.url("/a"))
        await asyncio.sleep(0.5)
        r = await client.get(server.url("/b"))  # renews the expiry to ~1.5 s
        assert r.reused
        await asyncio.sleep(0.7)  # past the first expiry (1 s): the sweep ran and spared it
        assert server.open_now == 1 and client.pool.idle_count() == 1
        assert client.pool.sweep_armed  # re-armed for the renewed expiry
        start = time.monotonic()
        await _until_closed(server, start, 0.3 + BOUND)
        assert client.pool.total == 0
    assert server.connections == 1


async def test_one_sweep_closes_every_expired_connection_of_every_origin() -> None:
    async with (
        ScriptedServer(keep, delay=0.05) as a,
        ScriptedServer(keep, delay=0.05) as b,
        Client(idle_timeout=0.3) as client,
    ):
        await asyncio.gather(*(client.get(s.url(f"/{i}")) for i in range(3) for s in (a, b)))
        assert client.pool.total == 6 and client.pool.idle_count() == 6
        timers = [h for h in asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
                  if not h.cancelled() and getattr(h._callback, "__self__", None) is client.pool]
        assert len(timers) == 1  # one timer for the pool, not one per connection
        start = time.monotonic()
        await _until_closed(a, start, 0.3 + BOUND)
        await _until_closed(b, start, 0.3 + BOUND)
        assert client.pool.total == 0 and not client.pool.sweep_armed
    assert a.connections == 3 and b.connections == 3


async def test_closing_the_client_cancels_the_sweep() -> None:
    async with ScriptedServer(keep) as server:
        client = Client(idle_timeout=30)
        await client.get(server.url("/a"))
        assert client.pool.sweep_armed
        await client.aclose()
        assert not client.pool.sweep_armed
        await _until_closed(server, time.monotonic(), BOUND)
