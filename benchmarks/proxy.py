"""Compare ``onehop proxy`` with other reverse proxies under wrk (issue 5, "Proxy").

Every proxy sits in front of the same nginx origin (one worker, ``return 200
"Hello, world!"``, keep-alive) and is driven by wrk keep-alive, all in one run:

- ``direct``: wrk straight to the origin, the ceiling for everything else;
- ``onehop``: ``onehop proxy --no-access-log --loop uvloop``, one process;
- ``nginx``: ``proxy_pass`` to an ``upstream`` block with ``keepalive 64``,
  ``proxy_http_version 1.1``, one worker: the bar a C proxy sets;
- ``aiohttp``: the reverse proxy a Python user would write (an ``aiohttp.web``
  handler forwarding method, path, headers and body through one shared
  ``ClientSession``), on uvloop;
- ``proxy.py``: the ``proxy.py`` package, a *forward* proxy, so wrk sends
  absolute-form requests (a Lua script sets ``wrk.path`` to the origin's URL);
  skipped when the package is not installed;
- ``onehop-w2``, ``nginx-w2``: the same with two workers (``--workers 2``).

Pinning (2 CPUs): the proxy under test on CPU 0, wrk and the origin on CPU 1,
so the proxy has one core to itself and the client side is the same for
everyone. Two-worker runs are pinned to CPUs 0-1 and share CPU 1 with wrk and
the origin: the numbers show how much a second worker buys on this machine,
not ideal scaling. Every cell runs ``--repeats`` times with the order of
proxies reversed on every other repeat; the table shows the median requests/s
and p99, the proxy tree's CPU per request, and its peak RSS (VmHWM summed over
the process tree).

The memory run (on by default; ``--skip-memory`` skips it, ``--memory-only``
runs only it) then streams 1 GiB down and 1 GiB up (once with Content-Length,
once chunked) through a fresh onehop proxy (origin: a small thread-per-
connection socket server that generates or discards bytes; client: raw
sockets in this process, reading or writing as fast as they can) and prints
the proxy's peak RSS, whose target is under 64 MiB: bodies must stream, not
buffer.

HTTP/2 rows (``--skip-h2``, ``--h2-only``): h2load (``-c50 -m10``, on CPU 1 with the
origin) sends the same request over cleartext HTTP/2 by prior knowledge to onehop
(its usual port) and to nginx (``listen ... http2``, the same ``proxy_pass``: the
ceiling); both forward over HTTP/1.1 to the same origin.

The ratio columns compare with onehop both ways: requests/s (onehop's over
theirs) and CPU per request (theirs over onehop's). On a shared machine the
second is the steadier one: requests/s also moves with whatever else runs on
the two CPUs. ``--baseline SRC`` adds ``onehop-baseline``, onehop run from
another source tree, for before/after numbers taken in the same run;
``--compiled-venv PATH`` (or ``ONEHOP_COMPILED_VENV``) adds ``onehop-compiled``, the
mypyc build installed in that venv (``ONEHOP_COMPILE=1 pip install .``), next to the
pure ``onehop`` row.

Run from the repository root with the dev environment::

    python benchmarks/proxy.py                          # ~3 minutes
    python benchmarks/proxy.py --duration 2 --repeats 1 --proxies onehop,nginx
    python benchmarks/proxy.py --skip-memory
    python benchmarks/proxy.py --memory-only
    python benchmarks/proxy.py --baseline /tmp/old/src --proxies onehop,onehop-baseline
    python benchmarks/proxy.py --compiled-venv /tmp/vc --proxies onehop,onehop-compiled,nginx

Needs ``wrk``, ``taskset``, ``nginx`` (``/usr/sbin/nginx`` or on PATH) and at
least two CPUs; aiohttp and proxy.py are skipped when not installed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _procs import (
    Cell,
    Running,
    compiled_python,
    free_port,
    have,
    print_h2_table,
    run_h2load,
    run_wrk,
    status_kib,
    without_pythonpath,
)

ORIGIN_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/origin.pid;
error_log {tmp}/origin.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{port} backlog=2048;
    client_max_body_size 0;
    location / {{ default_type text/plain; return 200 "Hello, world!"; }}
  }}
}}
"""

NGINX_PROXY_CONF = """\
worker_processes {workers};
daemon off;
pid {tmp}/proxy-{port}.pid;
error_log {tmp}/proxy-{port}.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  upstream origin {{
    server 127.0.0.1:{origin};
    keepalive 64;
    keepalive_requests 10000000;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=2048;
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""

#: nginx taking HTTP/2 from clients (h2c by prior knowledge), HTTP/1.1 to the origin.
NGINX_H2_PROXY_CONF = NGINX_PROXY_CONF.replace(
    "listen 127.0.0.1:{port} backlog=2048;", "listen 127.0.0.1:{port} http2 backlog=2048;")

AIOHTTP_PROXY = '''
"""A minimal aiohttp reverse proxy: what a Python user would write."""
import asyncio
import sys

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

UPSTREAM = sys.argv[1]
PORT = int(sys.argv[2])
HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
       "upgrade", "proxy-authorization", "proxy-authenticate", "host", "content-length"}


async def handler(request):
    session = request.app["session"]
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP)
    body = await request.read()
    async with session.request(request.method, UPSTREAM + request.path_qs, headers=headers,
                               data=body or None, allow_redirects=False) as resp:
        data = await resp.read()
        out = CIMultiDict((k, v) for k, v in resp.headers.items() if k.lower() not in HOP)
        return web.Response(status=resp.status, body=data, headers=out)


async def main():
    app = web.Application()
    app["session"] = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", PORT, backlog=2048).start()
    await asyncio.Event().wait()


try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
'''

#: Absolute-form requests for a forward proxy (``{url}`` filled in).
ABSOLUTE_LUA = 'wrk.path = "{url}"\n'

#: A socket origin for the memory run: ``GET`` gets N bytes, anything else has
#: its body discarded; thread per connection, keep-alive, no parsing beyond
#: what the two requests need.
MEMORY_ORIGIN = r'''
import socket, sys, threading

PORT = int(sys.argv[1])
CHUNK = memoryview(b"x" * (1 << 20))


def head(sock, buf):
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buf += data
    h, _, rest = buf.partition(b"\r\n\r\n")
    return h, rest


def serve(sock):
    buf = b""
    with sock:
        while True:
            h, buf = head(sock, buf)
            if h is None:
                return
            lines = h.split(b"\r\n")
            method, target = lines[0].split(b" ")[:2]
            fields = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip()
                      for l in lines[1:] if b":" in l}
            if method == b"GET":
                n = int(target.rsplit(b"/", 1)[1])
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                while n > 0:
                    k = min(n, len(CHUNK))
                    sock.sendall(CHUNK[:k])
                    n -= k
                continue
            if b"content-length" in fields:
                left = int(fields[b"content-length"]) - len(buf)
                buf = b""
                sink = bytearray(1 << 20)
                while left > 0:
                    k = sock.recv_into(sink, min(left, len(sink)))
                    if not k:
                        return
                    left -= k
            else:  # chunked: read until the last chunk (the body is only counted)
                while not buf.endswith(b"0\r\n\r\n"):
                    data = sock.recv(1 << 20)
                    if not data:
                        return
                    buf = (buf + data)[-16:]
                buf = b""
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


srv = socket.create_server(("127.0.0.1", PORT), backlog=64)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''

GIB = 1 << 30






def _nginx() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)










@dataclass
class Contender:
    """How to start one proxy (or None for ``direct``) and what wrk must send it."""

    name: str
    cmd: list[str] | None
    cpus: str = "0"
    absolute: bool = False
    note: str = ""
    #: ``PYTHONPATH`` head for this contender (``--baseline``: another onehop tree; empty:
    #: no ``PYTHONPATH`` at all, for the compiled build's venv).
    src: str | None = None




def contenders(tmp: Path, origin: int, nginx: str, baseline: str | None = None,
               compiled: str | None = None) -> dict[str, Contender]:
    """Every contender that can run here, keyed by name; commands use port ``{port}``."""
    py = sys.executable
    upstream = f"http://127.0.0.1:{origin}"
    out: dict[str, Contender] = {"direct": Contender("direct", None, note="wrk -> origin")}
    onehop = [py, "-m", "onehop", "proxy", "--listen", "127.0.0.1:{port}", "--upstream",
              upstream, "--no-access-log", "--loop", "uvloop"]
    out["onehop"] = Contender("onehop", onehop)
    if baseline:
        out["onehop-baseline"] = Contender("onehop-baseline", onehop, src=baseline,
                                           note=f"src from {baseline}")
    if compiled:
        out["onehop-compiled"] = Contender("onehop-compiled", [compiled, *onehop[1:]], src="",
                                           note="mypyc build")
    for workers in (1, 2):
        name = "nginx" if workers == 1 else "nginx-w2"
        conf = tmp / f"nginx-proxy-{workers}.conf.in"
        conf.write_text(NGINX_PROXY_CONF.replace("{workers}", str(workers)))
        out[name] = Contender(name, [nginx, "-p", str(tmp), "-c", str(conf)],
                              cpus="0" if workers == 1 else "0,1")
    if have("aiohttp"):
        script = tmp / "aiohttp_proxy.py"
        script.write_text(AIOHTTP_PROXY)
        out["aiohttp"] = Contender("aiohttp", [py, str(script), upstream, "{port}"])
    if have("proxy"):
        out["proxy.py"] = Contender(
            "proxy.py", [py, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "{port}",
                         "--num-workers", "1", "--num-acceptors", "1", "--log-level", "WARNING"],
            absolute=True, note="forward proxy, absolute-form requests")
    out["onehop-w2"] = Contender("onehop-w2", [*onehop, "--workers", "2"], cpus="0,1")
    return out


def _env_for(c: Contender, env: dict[str, str]) -> dict[str, str]:
    """The environment *c* runs in: ``PYTHONPATH`` from its ``src`` (none for the
    compiled build's venv, another tree first for ``--baseline``)."""
    if c.src == "":
        return without_pythonpath(env)
    if c.src is not None:
        return {**env, "PYTHONPATH": os.pathsep.join([c.src, env.get("PYTHONPATH", "")])}
    return env


def _instantiate(c: Contender, port: int, tmp: Path, origin: int) -> list[str]:
    assert c.cmd is not None
    cmd = [a.replace("{port}", str(port)) for a in c.cmd]
    if c.name.startswith("nginx"):
        template = Path(cmd[-1])
        conf = template.with_name(f"{template.stem}-{port}.conf")
        conf.write_text(template.read_text().format(tmp=tmp, port=port, origin=origin))
        cmd[-1] = str(conf)
    return cmd


def wrk_proxy(port: int, pid: int | None, duration: float, conns: int,
              lua: Path | None) -> Cell:
    """One wrk run through the proxy on *port*; CPU is the proxy tree's."""
    args = ["-t1", f"-c{conns}"] + (["-s", str(lua)] if lua is not None else [])
    return run_wrk(args, f"http://127.0.0.1:{port}/", pid, duration)


# --- memory: 1 GiB each way through the onehop proxy ------------------------------------------


def _download(port: int, size: int) -> float:
    """GET *size* bytes through the proxy, reading as fast as possible; return seconds."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(f"GET /{size} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        buf = bytearray(1 << 20)
        head = b""
        while b"\r\n\r\n" not in head:
            n = s.recv_into(buf)
            if not n:
                raise RuntimeError("proxy closed before the response head")
            head += bytes(buf[:n])
        h, _, rest = head.partition(b"\r\n\r\n")
        if not h.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"download answered {h[:40]!r}")
        got = len(rest)
        while got < size:
            n = s.recv_into(buf)
            if not n:
                raise RuntimeError(f"download cut short at {got} bytes")
            got += n
    return time.monotonic() - t0


def _upload(port: int, size: int, chunked: bool) -> float:
    """PUT *size* bytes through the proxy, writing as fast as possible; return seconds."""
    chunk = b"y" * (1 << 20)
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        s.sendall(f"PUT /upload HTTP/1.1\r\nHost: bench\r\n{framing}\r\n"
                  "Connection: close\r\n\r\n".encode())
        sent = 0
        frame = b"%x\r\n" % len(chunk)
        while sent < size:
            if chunked:
                s.sendall(frame)
                s.sendall(chunk)
                s.sendall(b"\r\n")
            else:
                s.sendall(chunk)
            sent += len(chunk)
        if chunked:
            s.sendall(b"0\r\n\r\n")
        answer = s.recv(4096)
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"upload answered {answer[:40]!r}")
    return time.monotonic() - t0


def memory_run(tmp: Path, env: dict[str, str], size: int) -> list[tuple[str, float, float]]:
    """Stream *size* bytes each way through onehop; (what, MiB/s, proxy VmHWM MiB) rows."""
    oport, pport = free_port(), free_port()
    script = tmp / "memory_origin.py"
    script.write_text(MEMORY_ORIGIN)
    origin = subprocess.Popen(["taskset", "-c", "1", sys.executable, str(script), str(oport)],
                              cwd=tmp, env=env)
    rows = []
    try:
        cmd = [sys.executable, "-m", "onehop", "proxy", "--listen", f"127.0.0.1:{pport}",
               "--upstream", f"http://127.0.0.1:{oport}", "--no-access-log", "--loop", "uvloop"]
        with Running(cmd, pport, env, tmp, cpus="0", target="/13", ready=b"HTTP/1.1 200") as proxy:
            base = status_kib(proxy.proc.pid, "VmHWM") / 1024
            rows.append(("after start-up", 0.0, base))
            steps: list[tuple[str, Callable[[], float]]] = [
                (f"download {size >> 20} MiB", lambda: _download(pport, size)),
                (f"upload {size >> 20} MiB (Content-Length)",
                 lambda: _upload(pport, size, False)),
                (f"upload {size >> 20} MiB (chunked)", lambda: _upload(pport, size, True)),
            ]
            for what, fn in steps:
                seconds = fn()
                rows.append((what, size / seconds / (1 << 20),
                             status_kib(proxy.proc.pid, "VmHWM") / 1024))
    finally:
        origin.terminate()
        origin.wait(10)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", default="50,1000",
                        help="comma-separated wrk -c values; one row each")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per cell, order reversed every other repeat")
    parser.add_argument("--proxies", default="",
                        help="comma-separated subset of direct, onehop, nginx, aiohttp, "
                             "proxy.py, onehop-w2, nginx-w2")
    parser.add_argument("--baseline", metavar="SRC",
                        help="also run onehop from this src directory (before/after in one run)")
    parser.add_argument("--compiled-venv", metavar="PATH",
                        default=os.environ.get("ONEHOP_COMPILED_VENV") or None,
                        help="add onehop-compiled: the mypyc build installed in this venv "
                             "(default: $ONEHOP_COMPILED_VENV)")
    parser.add_argument("--skip-memory", action="store_true", help="no 1 GiB streaming run")
    parser.add_argument("--memory-only", action="store_true", help="only the streaming run")
    parser.add_argument("--memory-size", type=int, default=GIB, help="bytes each way")
    parser.add_argument("--skip-h2", action="store_true", help="no HTTP/2 rows")
    parser.add_argument("--h2-only", action="store_true", help="only the HTTP/2 rows")
    args = parser.parse_args()
    nginx = _nginx()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            print(f"{tool} not found (apt-get install wrk util-linux)", file=sys.stderr)
            return 2
    if nginx is None:
        print("nginx not found (apt-get install nginx-light)", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("need 2 CPUs: the proxy on CPU 0, wrk and the origin on CPU 1", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="onehop-proxy-bench-"))
    repo_src = Path(__file__).resolve().parents[1] / "src"
    path = os.pathsep.join(p for p in (str(repo_src), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}

    if not args.skip_h2 and not args.memory_only:
        if shutil.which("h2load"):
            h2_bench(args, tmp, env, nginx)
        else:
            print("# h2load not found (apt-get install nghttp2-client): no HTTP/2 rows",
                  file=sys.stderr)
    if args.h2_only:
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    if not args.memory_only:
        bench(args, tmp, env, nginx)
    if not args.skip_memory:
        rows = memory_run(tmp, env, args.memory_size)
        print(f"\nonehop proxy peak RSS (VmHWM) while streaming {args.memory_size >> 20} MiB "
              "each way (target: under 64 MiB); proxy on CPU 0, origin on CPU 1\n")
        print("| step | MiB/s | VmHWM MiB after |")
        print("|---|---:|---:|")
        for what, rate, hwm in rows:
            print(f"| {what} | {rate:,.0f} | {hwm:.1f} |" if rate else
                  f"| {what} | - | {hwm:.1f} |")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def h2_bench(args: argparse.Namespace, tmp: Path, env: dict[str, str], nginx: str) -> None:
    """HTTP/2 from h2load through onehop and nginx to the HTTP/1.1 origin."""
    oport = free_port()
    (tmp / "origin-h2.conf").write_text(ORIGIN_CONF.format(tmp=tmp, port=oport))
    origin_cmd = [nginx, "-p", str(tmp), "-c", str(tmp / "origin-h2.conf")]
    template = tmp / "nginx-h2-proxy.conf.in"
    template.write_text(NGINX_H2_PROXY_CONF.replace("{workers}", "1"))
    every = contenders(tmp, oport, nginx, compiled=compiled_python(args.compiled_venv))
    contenders_h2 = {name: every[name] for name in ("onehop", "onehop-compiled") if name in every}
    contenders_h2["nginx"] = Contender("nginx", [nginx, "-p", str(tmp), "-c", str(template)])
    names = [n for n in contenders_h2 if not args.proxies or n in args.proxies.split(",")]
    results: dict[str, list[Cell]] = {}
    with Running(origin_cmd, oport, env, tmp, cpus="1", ready=b"HTTP/1.1 200"):
        for repeat in range(args.repeats):
            for name in names if repeat % 2 == 0 else names[::-1]:
                port = free_port()
                cmd = _instantiate(contenders_h2[name], port, tmp, oport)
                try:
                    # (ready once it accepts: nginx's h2c port does not answer HTTP/1.1)
                    with Running(cmd, port, _env_for(contenders_h2[name], env), tmp,
                                 ready=b"") as proc:
                        time.sleep(0.3)
                        cell = run_h2load(f"http://127.0.0.1:{port}/", proc.proc.pid,
                                          args.duration)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f"# h2 {name}: {exc}", file=sys.stderr)
                    continue
                results.setdefault(name, []).append(cell)
                print(f"# {repeat + 1} h2 {name:10} {cell.rps:9,.0f} req/s"
                      + (f"  errors {cell.errors}" if cell.errors else ""), file=sys.stderr)
    if not results.get("onehop"):
        return
    print(f"\nHTTP/2 from the client (h2c, prior knowledge), HTTP/1.1 to the origin: h2load "
          f"-c50 -m10 -D{args.duration:g}, median of {args.repeats}; proxy on CPU 0, h2load "
          "and the nginx origin on CPU 1\n")
    print_h2_table(names, results, "proxy", onehop_over_them=True)

def bench(args: argparse.Namespace, tmp: Path, env: dict[str, str], nginx: str) -> None:
    """The wrk comparison table: one row per contender and number of connections."""
    oport = free_port()
    (tmp / "origin.conf").write_text(ORIGIN_CONF.format(tmp=tmp, port=oport))
    origin_cmd = [nginx, "-p", str(tmp), "-c", str(tmp / "origin.conf")]
    every = contenders(tmp, oport, nginx, args.baseline, compiled_python(args.compiled_venv))
    names = list(every)
    if args.proxies:
        wanted = args.proxies.split(",")
        names = [n for n in names if n in wanted]
    conns_list = [int(c) for c in str(args.connections).split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * max(conns_list) + 1024  # wrk's sockets, and (inherited) the proxy's both ways
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    skipped = [n for n in ("aiohttp", "proxy.py") if n not in every]
    print(f"# contenders: {', '.join(names)}; {args.duration:g} s x {args.repeats} per cell, "
          f"wrk -t1 -c{args.connections}" + (f"; not installed: {', '.join(skipped)}"
                                             if skipped else ""), file=sys.stderr)
    results: dict[tuple[int, str], list[Cell]] = {}
    with Running(origin_cmd, oport, env, tmp, cpus="1", ready=b"HTTP/1.1 200"):
        for repeat in range(args.repeats):
            order = names if repeat % 2 == 0 else names[::-1]
            for conns in conns_list:
                for name in order:
                    c = every[name]
                    lua = None
                    if c.absolute:
                        lua = tmp / "absolute.lua"
                        lua.write_text(ABSOLUTE_LUA.format(url=f"http://127.0.0.1:{oport}/"))
                    try:
                        if c.cmd is None:
                            cell = wrk_proxy(oport, None, args.duration, conns, None)
                        else:
                            port = free_port()
                            cmd = _instantiate(c, port, tmp, oport)
                            target = f"http://127.0.0.1:{oport}/" if c.absolute else "/"
                            with Running(cmd, port, _env_for(c, env), tmp, cpus=c.cpus,
                                         target=target, ready=b"HTTP/1.1 200") as proc:
                                cell = wrk_proxy(port, proc.proc.pid, args.duration, conns, lua)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        print(f"# {name} -c{conns}: {exc}", file=sys.stderr)
                        continue
                    results.setdefault((conns, name), []).append(cell)
                    print(f"# {repeat + 1} c{conns:<5} {name:10} {cell.rps:9,.0f} req/s  "
                          f"p99 {cell.p99_ms:.2f} ms"
                          + (f"  errors {cell.errors}" if cell.errors else ""), file=sys.stderr)

    def med(cells: list[Cell], attr: str) -> float:
        return float(statistics.median(getattr(c, attr) for c in cells))

    print(f"\nwrk -t1 -c{args.connections} -d{args.duration:g}s keep-alive, median of "
          f"{args.repeats}; proxy on CPU 0, wrk and the nginx origin on CPU 1 (-w2: CPUs 0-1)\n")
    print("| conns | proxy | req/s | onehop req/s ÷ its | p99 ms | CPU µs/req | "
          "its CPU ÷ onehop's | peak RSS MiB | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for conns in conns_list:
        ref_cells = results.get((conns, "onehop"))
        ref = med(ref_cells, "rps") if ref_cells else 0.0
        ref_cpu = med(ref_cells, "cpu_us") if ref_cells else 0.0
        for name in names:
            cells = results.get((conns, name))
            if not cells:
                continue
            rps = med(cells, "rps")
            ratio = f"{ref / rps:.2f}x" if ref and rps else "-"
            cpu_us = med(cells, "cpu_us")
            cpu = f"{cpu_us:.1f}" if name != "direct" else "-"
            cpu_ratio = f"{cpu_us / ref_cpu:.2f}x" if ref_cpu and name != "direct" else "-"
            rss = f"{max(c.rss_mib for c in cells):.1f}" if name != "direct" else "-"
            label = name + (f" ({every[name].note})" if every[name].note else "")
            print(f"| {conns} | {label} | {rps:,.0f} | {ratio} | {med(cells, 'p99_ms'):.2f} | "
                  f"{cpu} | {cpu_ratio} | {rss} | {sum(c.errors for c in cells)} |")
    first = conns_list[0]
    if not results.get((first, "onehop")):
        return
    ref = med(results[(first, "onehop")], "rps")
    ref_cpu = med(results[(first, "onehop")], "cpu_us")
    print(f"\nTargets (issue 11), at -c{first}: onehop >= 3x aiohttp; and at -c{conns_list[-1]}"
          f" >= 0.8x its own -c{first} with zero errors. req/s depends on what else runs on "
          "the machine; CPU per request less so.")
    for other, goal in (("aiohttp", 3.0), ("nginx", 0.5)):
        if results.get((first, other)):
            by_rps = ref / med(results[(first, other)], "rps")
            by_cpu = med(results[(first, other)], "cpu_us") / ref_cpu if ref_cpu else 0.0
            verdict = "met" if min(by_rps, by_cpu) >= goal else "NOT met"
            print(f"- onehop / {other}: {by_rps:.2f}x req/s, {by_cpu:.2f}x by CPU per "
                  f"request (target {goal}x): {verdict}")
    last = conns_list[-1]
    if last != first and results.get((last, "onehop")):
        scale = med(results[(last, "onehop")], "rps") / ref
        errors = sum(c.errors for c in results[(last, "onehop")])
        verdict = "met" if scale >= 0.8 and not errors else "NOT met"
        print(f"- onehop -c{last} / -c{first}: {scale:.2f}x, {errors} errors (target 0.8x, "
              f"0 errors): {verdict}")
    if results.get((first, "onehop-baseline")):
        base = results[(first, "onehop-baseline")]
        print(f"- onehop / onehop-baseline: {ref / med(base, 'rps'):.2f}x req/s, "
              f"{med(base, 'cpu_us') / ref_cpu:.2f}x less CPU per request")
    if results.get((first, "onehop-w2")):
        print(f"- onehop --workers 2 / --workers 1: "
              f"{med(results[(first, 'onehop-w2')], 'rps') / ref:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
