"""Client throughput against a local nginx: onehop vs httpx, aiohttp and urllib3.

N GETs sequentially and with 64 concurrent tasks, through one pool each; prints
requests/s, the ratio to onehop, and TCP connections opened (from nginx's
``$connection`` log). Clients that are not installed are skipped.

    python benchmarks/client.py [-n 5000] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from onehop.client import Client
from tests.client.servers import nginx_server

CONCURRENCY = 64


async def _run(n: int, conc: int, get: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    if conc == 1:
        for _ in range(n):
            await get()
    else:
        per = n // conc

        async def worker() -> None:
            for _ in range(per):
                await get()

        await asyncio.gather(*(worker() for _ in range(conc)))
        n = per * conc
    return n / (time.perf_counter() - start)


async def bench_onehop(url: str, n: int, conc: int) -> float:
    async with Client(max_per_origin=conc) as client:
        async def get() -> None:
            r = await client.get(url)
            assert r.status_code == 200

        return await _run(n, conc, get)


async def bench_httpx(url: str, n: int, conc: int) -> float:
    import httpx

    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(limits=limits) as client:
        async def get() -> None:
            r = await client.get(url)
            assert r.status_code == 200

        return await _run(n, conc, get)


async def bench_aiohttp(url: str, n: int, conc: int) -> float:
    import aiohttp

    conn = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def get() -> None:
            async with session.get(url) as r:
                await r.read()
                assert r.status == 200

        return await _run(n, conc, get)


def bench_urllib3(url: str, n: int) -> float:
    import urllib3

    pool = urllib3.PoolManager(maxsize=1)
    start = time.perf_counter()
    for _ in range(n):
        assert pool.request("GET", url).status == 200
    return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    rows: list[tuple[str, str, float, int]] = []
    with nginx_server(keepalive_timeout="75s", keepalive_requests=1_000_000) as (port, log):
        url = f"http://127.0.0.1:{port}/index.html"
        for conc in (1, CONCURRENCY):
            mode = "sequential" if conc == 1 else f"{conc} tasks"
            for name, fn in (("onehop", bench_onehop), ("httpx", bench_httpx),
                             ("aiohttp", bench_aiohttp)):
                before = {line.split()[0] for line in log()}
                try:
                    rps = asyncio.run(fn(url, args.n, conc))
                except ImportError:
                    continue
                time.sleep(0.2)
                opened = len({line.split()[0] for line in log()} - before)
                rows.append((mode, name, rps, opened))
            if conc == 1:
                before = {line.split()[0] for line in log()}
                try:
                    rps = bench_urllib3(url, args.n)
                    rows.append((mode, "urllib3", rps, len({ln.split()[0] for ln in log()}
                                                          - before)))
                except ImportError:
                    pass
    base = {mode: rps for mode, name, rps, _ in rows if name == "onehop"}
    print(f"{'mode':<12} {'client':<8} {'req/s':>10} {'onehop/x':>9} {'conns':>6}")
    for mode, name, rps, opened in rows:
        print(f"{mode:<12} {name:<8} {rps:>10.0f} {base[mode] / rps:>8.2f}x {opened:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
