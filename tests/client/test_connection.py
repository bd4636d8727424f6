"""HTTPConnection's public face toward the pool and the proxy, on real sockets."""

from __future__ import annotations

import asyncio
import time

import pytest

from onehop.client import Client

from .servers import Action, ScriptedServer, Seen, ok

pytestmark = pytest.mark.timeout(20)


def keep(seen: Seen) -> Action:
    return ok(seen.path.encode()), "keep"


def answer_then_close(seen: Seen) -> Action:
    return ok(), "close"


async def test_idle_connection_is_reusable_until_the_keep_alive_limit_rfc7230_a_1_2() -> None:
    async with ScriptedServer(keep) as server, Client(idle_timeout=30) as client:
        await client.get(server.url("/"))
        (conn,) = client.pool._idle[("http", "127.0.0.1", server.port)]
        now = time.monotonic()
        assert conn.is_reusable(now) and conn.reuse_refusal(now) is None
        later = conn.expires_at + 0.001
        assert not conn.is_reusable(later)
        assert conn.reuse_refusal(later) == "idle past the keep-alive limit"


async def test_idle_connection_the_server_closed_is_not_reusable_rfc9112_9_3_1() -> None:
    async with ScriptedServer(answer_then_close) as server, Client() as client:
        await client.get(server.url("/"))
        origin = ("http", "127.0.0.1", server.port)
        (conn,) = client.pool._idle[origin]
        await asyncio.sleep(0.05)  # the FIN arrives while idle
        now = time.monotonic()
        assert not conn.is_reusable(now)
        assert conn.reuse_refusal(now) == "server closed the idle connection"
