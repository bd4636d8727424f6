"""Client throughput against a local nginx: onehop vs httpx, aiohttp and urllib3.

N GETs sequentially and with 64 concurrent tasks, through one pool each (urllib3:
sequential only, a ``PoolManager`` with one connection, in this same process);
prints requests/s, the ratio of onehop's to each, this process's CPU time per
request, and TCP connections opened (the distinct ``$connection`` numbers in
nginx's access log for that run). Clients that are not installed are skipped;
CPU time counts no import.

As in ``benchmarks/server.py``, nginx is pinned to CPU 0 (``taskset``) and this
process to CPU 1 (``sched_setaffinity``). Every cell runs ``--repeats`` times,
the order of clients reversed on every other repeat; the table shows medians.

    python benchmarks/client.py [-n 5000] [--repeats 3] [--uvloop] [--clients onehop,aiohttp]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from onehop.client import Client
from tests.client.servers import nginx_server

CONCURRENCY = 64
CLIENTS = ("onehop", "httpx", "aiohttp", "urllib3")


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
    """Sequential GETs over one pooled connection (urllib3 is blocking: no task mode)."""
    import urllib3

    with urllib3.PoolManager(maxsize=1, block=True) as pool:
        start = time.perf_counter()
        for _ in range(n):
            r = pool.request("GET", url)
            assert r.status == 200 and r.data
        return n / (time.perf_counter() - start)


def _pin(cpu: int) -> bool:
    """Pin this process to *cpu* if the machine has it; return whether it did."""
    if not hasattr(os, "sched_setaffinity") or cpu not in os.sched_getaffinity(0):
        return False
    os.sched_setaffinity(0, {cpu})
    return True


def _measure(name: str, url: str, n: int, conc: int, log: Callable[[], list[str]],
             use_uvloop: bool) -> tuple[float, float, int]:
    """One run: (requests/s, CPU µs per request, connections opened)."""
    before = {line.split()[0] for line in log()}
    cpu = time.process_time()
    if name == "urllib3":
        rps = bench_urllib3(url, n)
    else:
        fn = {"onehop": bench_onehop, "httpx": bench_httpx, "aiohttp": bench_aiohttp}[name]
        coro = fn(url, n, conc)
        if use_uvloop:
            import uvloop

            rps = uvloop.run(coro)
        else:
            rps = asyncio.run(coro)
    cpu_us = (time.process_time() - cpu) / n * 1e6
    time.sleep(0.2)  # let nginx write the last log lines
    opened = len({line.split()[0] for line in log()} - before)
    return rps, cpu_us, opened


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5000, help="requests per run")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per cell, client order reversed every other repeat")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    args = parser.parse_args()
    clients = []
    for name in args.clients.split(","):
        try:  # import first, so no run's CPU time counts an import
            importlib.import_module(name)
            clients.append(name)
        except ImportError:
            print(f"{name} is not installed: skipped", file=sys.stderr)
    pinned = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    if pinned:
        pinned = _pin(1)
    if not pinned:
        print("warning: not pinned (needs taskset and two CPUs); numbers are noisier",
              file=sys.stderr)
    # (mode, client) -> runs of (req/s, CPU µs/request, connections opened)
    cells: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    with nginx_server(keepalive_timeout="75s", keepalive_requests=1_000_000,
                      cpu=0 if pinned else None) as (port, log):
        url = f"http://127.0.0.1:{port}/index.html"
        for conc in (1, CONCURRENCY):
            mode = "sequential" if conc == 1 else f"{conc} tasks"
            names = [c for c in clients if conc == 1 or c != "urllib3"]
            for repeat in range(args.repeats):
                for name in names if repeat % 2 == 0 else names[::-1]:
                    got = _measure(name, url, args.n, conc, log, args.uvloop)
                    cells.setdefault((mode, name), []).append(got)
    print(f"{args.n} GETs per run, median of {args.repeats}; nginx on CPU 0, client on CPU 1"
          if pinned else f"{args.n} GETs per run, median of {args.repeats}; not pinned")
    print(f"{'mode':<12} {'client':<8} {'req/s':>8} {'onehop/x':>9} {'CPU µs/req':>11} "
          f"{'conns':>6}")
    for (mode, name), runs in cells.items():
        rps = statistics.median(r[0] for r in runs)
        cpu_us = statistics.median(r[1] for r in runs)
        opened = max(r[2] for r in runs)
        base = cells.get((mode, "onehop"))
        ratio = f"{statistics.median(r[0] for r in base) / rps:>8.2f}x" if base else f"{'-':>9}"
        print(f"{mode:<12} {name:<8} {rps:>8.0f} {ratio} {cpu_us:>11.0f} {opened:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
