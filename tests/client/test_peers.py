"""The client against real servers: http.server (HTTP/1.0), uvicorn and nginx."""

from __future__ import annotations

import asyncio

import pytest

from onehop.client import Client

from .servers import NGINX, http10_server, nginx_server, uvicorn_server

pytestmark = pytest.mark.timeout(30)


async def test_http10_server_close_delimited_body_is_read_to_eof_rfc9112_6_3() -> None:
    with http10_server() as (port, connections):
        async with Client() as client:
            rs = [await client.get(f"http://127.0.0.1:{port}/p{i}") for i in range(3)]
    assert [r.content for r in rs] == [f"path=/p{i}".encode() for i in range(3)]
    assert all(r.http_version == "1.0" and not r.reused for r in rs)
    assert rs[0].close_reason == "HTTP/1.0 response without keep-alive"
    assert len(connections) == 3


async def test_uvicorn_keeps_one_connection_for_sequential_requests_rfc9112_9_3() -> None:
    with uvicorn_server() as port:
        async with Client() as client:
            url = f"http://127.0.0.1:{port}"
            a = await client.get(url + "/a")
            b = await client.post(url + "/b", content=b"body")
            c = await client.put(url + "/c", content=b"x")
            d = await client.delete(url + "/d")
            counts = client.pool.connections_opened
    assert [a.content, b.content, c.content, d.content] == [
        b"GET /a ", b"POST /b body", b"PUT /c x", b"DELETE /d "]
    assert [r.reused for r in (a, b, c, d)] == [False, True, True, True]
    assert counts == 1


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
async def test_nginx_keepalive_requests_limit_closes_and_client_reconnects_rfc9112_9_6() -> None:
    with nginx_server(keepalive_timeout="5s", keepalive_requests=3) as (port, log):
        async with Client() as client:
            rs = [await client.get(f"http://127.0.0.1:{port}/echo") for _ in range(7)]
            opened = client.pool.connections_opened
        lines = log()
    assert [r.status_code for r in rs] == [200] * 7
    assert [r.reused for r in rs] == [False, True, True, False, True, True, False]
    assert rs[2].close_reason == "server sent Connection: close"
    assert opened == 3
    assert len(lines) == 7  # each request reached nginx exactly once
    assert len({line.split()[0] for line in lines}) == 3


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
async def test_nginx_idle_close_after_keepalive_timeout_is_survived_rfc9112_9_3_1() -> None:
    lines_out: list[str] = []
    with nginx_server(keepalive_timeout="1s", keepalive_requests=100) as (port, log):
        async with Client(trace=lines_out.append) as client:
            a = await client.get(f"http://127.0.0.1:{port}/")
            await asyncio.sleep(1.3)  # nginx closes the idle connection meanwhile
            b = await client.get(f"http://127.0.0.1:{port}/")
            big = await client.get(f"http://127.0.0.1:{port}/big")
        lines = log()
    assert a.content == b"hello from nginx\n" and b.content == a.content
    assert len(big.content) == 300_000 and big.reused
    assert not b.reused
    assert len(lines) == 3
    assert any("closed while idle" in line for line in lines_out)
    assert not any("retrying" in line for line in lines_out)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
async def test_nginx_concurrent_requests_open_no_more_connections_than_the_limit() -> None:
    with nginx_server(keepalive_timeout="5s", keepalive_requests=1000) as (port, log):
        async with Client(max_per_origin=4) as client:
            rs = await asyncio.gather(
                *(client.get(f"http://127.0.0.1:{port}/echo") for _ in range(40))
            )
            opened = client.pool.connections_opened
        lines = log()
    assert all(r.status_code == 200 for r in rs)
    assert opened <= 4
    assert len(lines) == 40
