"""Compare ``onehop serve`` with other ASGI servers under wrk (issue 3, "Speed").

Runs the same raw-ASGI hello-world app and a small Starlette JSON endpoint
under each server installed (onehop, uvicorn+httptools, uvicorn+h11, hypercorn,
granian), one worker each, all on uvloop, server pinned to CPU 0 and wrk to
CPU 1 (``taskset``), in three modes: keep-alive, ``Connection: close`` on every
request, and HTTP/1.0 keep-alive (a wrk Lua script sends ``GET / HTTP/1.0`` with
``Connection: keep-alive``), and TLS keep-alive (``https://``, a self-signed
P-256 certificate made with the ``openssl`` command; wrk negotiates TLS 1.3 with
every server). Every cell is measured ``--repeats`` times with the
order of servers reversed on every other repeat; the table shows the median.
Prints requests/s, ratio to onehop, p99 latency, server CPU per request and
peak RSS (VmHWM summed over the server's process tree), then the memory each
idle keep-alive connection costs at 1,000 and 10,000 open connections.

HTTP/2 rows (``--skip-h2``, ``--h2-only``): h2load (``-c50 -m10``, pinned to CPU 1)
sends the hello-world request over cleartext HTTP/2 by prior knowledge to onehop
(on its usual port), hypercorn and granian (``--http 2``), and nginx (``listen ...
http2``, ``return 200``, one worker: the ceiling), each on CPU 0, median of
``--repeats`` runs with the order reversed every other one. h2load does not
reconnect after a GOAWAY, so onehop's and nginx's limits on requests per
connection are lifted for these rows.

Run from the repository root with the dev environment::

    python benchmarks/server.py                       # ~8 minutes
    python benchmarks/server.py --duration 2 --repeats 1 --servers onehop,uvicorn+httptools
    python benchmarks/server.py --skip-memory --apps hello --modes keep-alive
    python benchmarks/server.py --compiled-venv /tmp/vc   # adds onehop-compiled: the mypyc
                                # build from that venv (ONEHOP_COMPILE=1 pip install .)

Needs ``wrk`` and ``taskset`` (Debian: ``apt-get install wrk util-linux``) and
at least two CPUs; hypercorn and granian are skipped when not installed.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _procs import (
    Cell,
    Running,
    compiled_python,
    cpu_seconds,
    free_port,
    have,
    print_h2_table,
    run_h2load,
    run_wrk,
    status_kib,
)

APPS_SOURCE = '''
async def ws_echo(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"),
                    "text": message.get("text")})

async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})

try:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def _json(request):
        return JSONResponse({"hello": "world"})

    starlette = Starlette(routes=[Route("/", _json)])
except ImportError:
    starlette = None
'''

HTTP10_LUA = '''
request = function()
  return "GET / HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\nConnection: keep-alive\\r\\n\\r\\n"
end
'''

MODES = {
    "keep-alive": [],
    "close": ["-H", "Connection: close"],
    "http/1.0 keep-alive": ["-s", "{lua}"],
    "tls keep-alive": [],
}
#: Modes served over TLS (the servers get the certificate, wrk an https URL).
TLS_MODES = frozenset({"tls keep-alive"})
APPS = ("hello", "starlette")
#: Idle timeout given to every server, long enough for the memory measurement.
IDLE_TIMEOUT = 120
#: Seconds allowed for opening the idle connections of one measurement (a server that
#: accepts slowly gets "-" instead of stalling the run).
IDLE_BUDGET = 60






def make_cert(directory: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key (PKCS#8, as granian needs)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return str(cert), str(key)


def server_commands(app: str, port: int, baseline: str | None = None,
                    apps_dir: str = "", tls: tuple[str, str] | None = None,
                    compiled: str | None = None) -> dict[str, list[str]]:
    """The command line of every installed server, serving *app* on *port* (with TLS when
    *tls* is (certfile, keyfile)); with *baseline*, also ``onehop-baseline``: onehop run
    from that source tree; with *compiled* (a venv's Python), ``onehop-compiled``: the
    mypyc build."""
    py = sys.executable
    ssl_args = ["--ssl-certfile", tls[0], "--ssl-keyfile", tls[1]] if tls else []
    onehop = [py, "-m", "onehop", "serve", app, "--port", str(port), "--no-access-log",
              "--log-level", "warning", "--loop", "uvloop",
              "--timeout-keep-alive", str(IDLE_TIMEOUT), *ssl_args]
    out = {"onehop": onehop}
    if baseline:
        out["onehop-baseline"] = ["env", f"PYTHONPATH={apps_dir}{os.pathsep}{baseline}",
                                  *onehop]
    if compiled:
        out["onehop-compiled"] = ["env", f"PYTHONPATH={apps_dir}", compiled, *onehop[1:]]
    if have("uvicorn"):
        base = [py, "-m", "uvicorn", app, "--port", str(port), "--no-access-log",
                "--log-level", "warning", "--loop", "uvloop",
                "--timeout-keep-alive", str(IDLE_TIMEOUT), *ssl_args]
        if have("httptools"):
            out["uvicorn+httptools"] = [*base, "--http", "httptools"]
        out["uvicorn+h11"] = [*base, "--http", "h11"]
    if have("hypercorn"):
        out["hypercorn"] = [py, "-m", "hypercorn", app, "-b", f"127.0.0.1:{port}", "-w", "1",
                            "-k", "uvloop", "--log-level", "warning",
                            "--keep-alive", str(IDLE_TIMEOUT),
                            *(["--certfile", tls[0], "--keyfile", tls[1]] if tls else [])]
    granian = shutil.which("granian", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                           f"{os.environ.get('PATH', '')}")
    if granian:
        out["granian"] = [granian, "--interface", "asgi", "--host", "127.0.0.1", "--port",
                          str(port), "--workers", "1", "--loop", "uvloop", "--no-ws",
                          "--http", "1", "--log-level", "warning", "--no-access-log",
                          *(["--ssl-certificate", tls[0], "--ssl-keyfile", tls[1]]
                            if tls else []), app]
    return out












#: The WebSocket echo rows: (label, command template); {port} and {py} are filled in.
WS_SERVERS = {
    "onehop (websockets)": ["{py}", "-m", "onehop", "serve", "bench_apps:ws_echo", "--port",
                            "{port}", "--no-access-log", "--log-level", "warning", "--loop",
                            "uvloop", "--ws", "websockets", "--no-ws-per-message-deflate"],
    "onehop (wsproto)": ["{py}", "-m", "onehop", "serve", "bench_apps:ws_echo", "--port",
                         "{port}", "--no-access-log", "--log-level", "warning", "--loop",
                         "uvloop", "--ws", "wsproto", "--no-ws-per-message-deflate"],
    "uvicorn (websockets-sansio)": ["{py}", "-m", "uvicorn", "bench_apps:ws_echo", "--port",
                                    "{port}", "--no-access-log", "--log-level", "warning",
                                    "--loop", "uvloop", "--ws", "websockets-sansio",
                                    "--ws-per-message-deflate", "false"],
    "uvicorn (websockets)": ["{py}", "-m", "uvicorn", "bench_apps:ws_echo", "--port", "{port}",
                             "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
                             "--ws", "websockets", "--ws-per-message-deflate", "false"],
    "uvicorn (wsproto)": ["{py}", "-m", "uvicorn", "bench_apps:ws_echo", "--port", "{port}",
                          "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
                          "--ws", "wsproto", "--ws-per-message-deflate", "false"],
    "granian": ["{granian}", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}",
                "--workers", "1", "--loop", "uvloop", "--log-level", "warning",
                "--no-access-log", "bench_apps:ws_echo"],
}


NGINX_H2_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx-h2-{port}.pid;
error_log {tmp}/nginx-h2-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    http2_max_requests 100000000;
    client_body_temp_path {tmp}/nginx-body;
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{ default_type text/plain; return 200 "Hello, world!"; }}
    }}
}}
"""


def h2_commands(port: int, tmp: Path, compiled: str | None = None) -> dict[str, list[str]]:
    """The HTTP/2 contenders serving the hello app (nginx: its own 200) on *port*, h2c;
    with *compiled* (a venv's Python), also ``onehop-compiled``."""
    py = sys.executable
    # (h2load does not reconnect after a GOAWAY: onehop's and nginx's requests-per-
    # connection limits, 1000 by default, are lifted so no connection ends mid-run.)
    ours = server_commands("bench_apps:hello", port, apps_dir=str(tmp), compiled=compiled)
    unlimited = ["--max-requests-per-connection", "100000000"]
    out = {"onehop": [*ours["onehop"], *unlimited]}
    if compiled:
        out["onehop-compiled"] = [*ours["onehop-compiled"], *unlimited]
    if have("hypercorn"):
        out["hypercorn"] = server_commands("bench_apps:hello", port)["hypercorn"]
    granian = shutil.which("granian", path=f"{Path(py).parent}{os.pathsep}"
                                           f"{os.environ.get('PATH', '')}")
    if granian:
        cmd = server_commands("bench_apps:hello", port)["granian"]
        out["granian"] = [*cmd[:cmd.index("--http") + 1], "2", *cmd[cmd.index("--http") + 2:]]
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if nginx:
        conf = tmp / f"nginx-h2-{port}.conf"
        conf.write_text(NGINX_H2_CONF.format(tmp=tmp, port=port))
        out["nginx"] = [nginx, "-p", str(tmp), "-c", str(conf)]
    return out


def h2_rows(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> None:
    """HTTP/2 hello world under h2load -c50 -m10: onehop against hypercorn, granian, nginx."""
    compiled = compiled_python(args.compiled_venv)
    names = list(h2_commands(0, tmp, compiled))
    if args.servers:
        names = [n for n in names if n in args.servers.split(",")]
    results: dict[str, list[Cell]] = {}
    for repeat in range(args.repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            port = free_port()
            cmd = h2_commands(port, tmp, compiled)[name]
            try:
                # (ready once it accepts: h2-only listeners do not answer an HTTP/1.1 probe)
                with Running(cmd, port, env, tmp, ready=b"") as server:
                    time.sleep(0.3)
                    cell = run_h2load(f"http://127.0.0.1:{port}/", server.proc.pid,
                                      args.duration)
            except RuntimeError as exc:
                print(f"# h2 {name}: {exc}", file=sys.stderr)
                continue
            results.setdefault(name, []).append(cell)
            print(f"# {repeat + 1} h2 {name:10} {cell.rps:9,.0f} req/s {cell.errors} errors",
                  file=sys.stderr)
    if not results.get("onehop"):
        return
    ref = statistics.median(c.rps for c in results["onehop"])
    print(f"\nHTTP/2 (h2c, prior knowledge), hello app: h2load -c50 -m10 -D{args.duration:g}, "
          f"median of {args.repeats}; server on CPU 0, h2load on CPU 1\n")
    print_h2_table(names, results, "server", onehop_over_them=False)
    if results.get("hypercorn"):
        ratio = ref / statistics.median(c.rps for c in results["hypercorn"])
        print(f"\nonehop / hypercorn over HTTP/2: {ratio:.2f}x req/s (target 2x): "
              + ("met" if ratio >= 2 else "NOT met"))


def ws_rows(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> None:
    """WebSocket echo: 1 KiB binary messages on 50 connections, 8 in flight on each
    (benchmarks/_wsload.py on CPU 1); messages/s and the server's CPU per message."""
    load = Path(__file__).resolve().parent / "_wsload.py"
    granian = shutil.which("granian", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                           f"{os.environ.get('PATH', '')}")
    compiled = compiled_python(args.compiled_venv)
    templates = dict(WS_SERVERS)
    if compiled:
        # (The mypyc build from its venv: no PYTHONPATH but the apps' directory.)
        ours = templates["onehop (websockets)"]
        templates = {"onehop (websockets)": ours,
                     "onehop-compiled (websockets)": ["env", f"PYTHONPATH={tmp}", compiled,
                                                      *ours[1:]],
                     **templates}
    names = [n for n in templates if n != "granian" or granian]
    if args.ws_servers:
        names = [n for n in names if n in args.ws_servers.split(",")]
    if not have("uvicorn"):
        names = [n for n in names if not n.startswith("uvicorn")]
    results: dict[str, list[tuple[float, float]]] = {}
    for repeat in range(args.repeats):
        for name in (names if repeat % 2 == 0 else names[::-1]):
            port = free_port()
            cmd = [a.format(py=sys.executable, port=port, granian=granian or "")
                   for a in templates[name]]
            try:
                with Running(cmd, port, env, tmp, ready=b"HTTP/1.") as server:
                    cpu0 = cpu_seconds(server.proc.pid)
                    out = subprocess.run(
                        ["taskset", "-c", "1", sys.executable, str(load), "127.0.0.1",
                         str(port), "50", "1024", str(args.duration)],
                        capture_output=True, text=True, timeout=args.duration + 60, env=env)
                    cpu = cpu_seconds(server.proc.pid) - cpu0
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"# ws {name}: {exc}", file=sys.stderr)
                continue
            fields = dict(line.split() for line in out.stdout.splitlines() if line)
            count, seconds = int(fields.get("messages", 0)), float(fields.get("seconds", 1))
            if not count:
                print(f"# ws {name}: no messages ({out.stderr.strip()[-200:]})", file=sys.stderr)
                continue
            results.setdefault(name, []).append((count / seconds, cpu / count * 1e6))
            print(f"# ws {repeat + 1} {name:28} {count / seconds:9,.0f} msg/s", file=sys.stderr)
    ref = statistics.median(r for r, _ in results.get(names[0], [(0.0, 0.0)]))
    print("\nWebSocket echo, 1 KiB binary messages, 50 connections x 8 in flight, median of "
          f"{args.repeats}; server on CPU 0, load generator on CPU 1 (no compression)\n")
    print("| server | messages/s | onehop ÷ it | CPU µs/message |")
    print("|---|---:|---:|---:|")
    for name in names:
        cells = results.get(name)
        if not cells:
            continue
        rate = statistics.median(r for r, _ in cells)
        cpu = statistics.median(c for _, c in cells)
        print(f"| {name} | {rate:,.0f} | {ref / rate:.2f}x | {cpu:.1f} |")


def wrk_server(server: Running, mode_args: list[str], duration: float, conns: int,
               scheme: str = "http") -> Cell:
    """One wrk run against *server*; CPU is the server tree's, per completed request."""
    return run_wrk(["-t1", f"-c{conns}", *mode_args], f"{scheme}://127.0.0.1:{server.port}/",
                   server.proc.pid, duration)


def idle_connection_cost(server: Running, count: int) -> float:
    """KiB of server RSS per idle keep-alive connection, each having served one request."""
    time.sleep(0.3)
    before = status_kib(server.proc.pid, "VmRSS")
    socks: list[socket.socket] = []
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    sel = selectors.DefaultSelector()
    budget = time.monotonic() + IDLE_BUDGET
    try:
        for start in range(0, count, 200):  # batches: stay within the listen backlog
            if time.monotonic() > budget:
                raise RuntimeError(f"accepted only {start:,} connections in {IDLE_BUDGET} s")
            batch = []
            for _ in range(min(200, count - start)):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                s.sendall(request)
                batch.append(s)
            socks.extend(batch)
            pending = {s.fileno(): s for s in batch}
            for s in batch:
                sel.register(s, selectors.EVENT_READ)
            deadline = time.monotonic() + 30
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(1):
                    sock = pending.pop(key.fd)  # type: ignore[arg-type]
                    sel.unregister(sock)
                    sock.recv(65536)  # the small response arrives whole
            if pending:
                raise RuntimeError(f"{len(pending)} responses missing")
        time.sleep(1.0)
        after = status_kib(server.proc.pid, "VmRSS")
        alive = sum(1 for s in socks if _still_open(s))
        if alive < count * 0.99:
            raise RuntimeError(f"server closed {count - alive} idle connections")
        return (after - before) / count
    finally:
        sel.close()
        for s in socks:
            s.close()


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", default="50,1000",
                        help="comma-separated wrk -c values; one row each")
    parser.add_argument("--baseline", metavar="SRC",
                        help="add onehop-baseline: onehop from another source tree")
    parser.add_argument("--compiled-venv", metavar="PATH",
                        default=os.environ.get("ONEHOP_COMPILED_VENV") or None,
                        help="add onehop-compiled: the mypyc build installed in this venv "
                             "(default: $ONEHOP_COMPILED_VENV)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs per cell, server order reversed every other repeat")
    parser.add_argument("--servers", default="", help="comma-separated subset")
    parser.add_argument("--apps", default=",".join(APPS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-ws", action="store_true", help="no WebSocket echo rows")
    parser.add_argument("--ws-only", action="store_true", help="only the WebSocket echo rows")
    parser.add_argument("--skip-h2", action="store_true", help="no HTTP/2 rows")
    parser.add_argument("--h2-only", action="store_true", help="only the HTTP/2 rows")
    parser.add_argument("--ws-servers", default="", help="comma-separated subset of the rows")
    parser.add_argument("--idle-counts", default="1000,10000")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            print(f"{tool} not found (apt-get install wrk util-linux)", file=sys.stderr)
            return 2
    if (os.cpu_count() or 1) < 2:
        print("need 2 CPUs: the server on CPU 0, wrk on CPU 1", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(int(n) for n in args.idle_counts.split(",")) + 1024
    if soft < want:  # for our sockets and, inherited, the server's
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    tmp = Path(tempfile.mkdtemp(prefix="onehop-bench-"))
    (tmp / "bench_apps.py").write_text(APPS_SOURCE)
    lua = tmp / "http10.lua"
    lua.write_text(HTTP10_LUA)
    tls = make_cert(tmp) if shutil.which("openssl") else None
    repo_src = Path(__file__).resolve().parents[1] / "src"
    path = os.pathsep.join(p for p in (str(tmp), str(repo_src), os.environ.get("PYTHONPATH"))
                           if p)
    env = {**os.environ, "PYTHONPATH": path}

    compiled = compiled_python(args.compiled_venv)
    names = list(server_commands("x:y", 0, args.baseline, str(tmp), compiled=compiled))
    conns_list = [int(c) for c in args.connections.split(",")]
    if args.servers:
        names = [n for n in names if n in args.servers.split(",")]
    apps = [a for a in args.apps.split(",") if a in APPS]
    modes = [m for m in args.modes.split(",") if m in MODES and (tls or m not in TLS_MODES)]
    print(f"# servers: {', '.join(names)}; {args.duration:g} s x {args.repeats} per cell, "
          f"wrk -t1 -c{args.connections}", file=sys.stderr)

    if not args.skip_h2 and shutil.which("h2load"):
        h2_rows(args, env, tmp)
    elif not args.skip_h2:
        print("# h2load not found (apt-get install nghttp2-client): no HTTP/2 rows",
              file=sys.stderr)
    if args.h2_only:
        return 0
    if not args.skip_ws:
        ws_rows(args, env, tmp)
    if args.ws_only:
        return 0

    results: dict[tuple[str, str, int, str], list[Cell]] = {}
    for repeat in range(args.repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for app in apps:
            for mode in modes:
                margs = [a.replace("{lua}", str(lua)) for a in MODES[mode]]
                for conns in conns_list:
                    for name in order:
                        port = free_port()
                        secure = mode in TLS_MODES
                        cmd = server_commands(f"bench_apps:{app}", port, args.baseline,
                                              str(tmp), tls if secure else None,
                                              compiled)[name]
                        try:
                            with Running(cmd, port, env, tmp, tls=secure) as server:
                                cell = wrk_server(server, margs, args.duration, conns,
                                                  "https" if secure else "http")
                        except RuntimeError as exc:
                            print(f"# {name} {app} {mode} -c{conns}: {exc}", file=sys.stderr)
                            continue
                        results.setdefault((app, mode, conns, name), []).append(cell)
                        print(f"# {repeat + 1} {app:9} {mode:19} c{conns:<5} {name:17} "
                              f"{cell.rps:9,.0f} req/s {cell.errors} errors", file=sys.stderr)

    def med(cells: list[Cell], attr: str) -> float:
        return statistics.median(getattr(c, attr) for c in cells)

    print(f"\nwrk -t1 -c{args.connections} -d{args.duration:g}s, median of {args.repeats}; "
          "server on CPU 0, wrk on CPU 1\n")
    print("| app | mode | conns | server | req/s | vs onehop | p99 ms | CPU µs/req "
          "| peak RSS MiB | errors |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for app in apps:
        for mode in modes:
            for conns in conns_list:
                ref_cells = results.get((app, mode, conns, "onehop"))
                ref = med(ref_cells, "rps") if ref_cells else 0.0
                for name in names:
                    cells = results.get((app, mode, conns, name))
                    if not cells:
                        continue
                    rps = med(cells, "rps")
                    ratio = f"{rps / ref:.2f}x" if ref else "-"
                    print(f"| {app} | {mode} | {conns} | {name} | {rps:,.0f} | {ratio} | "
                          f"{med(cells, 'p99_ms'):.2f} | {med(cells, 'cpu_us'):.1f} | "
                          f"{max(c.rss_mib for c in cells):.1f} | "
                          f"{max(c.errors for c in cells)} |")

    if not args.skip_memory:
        counts = [int(n) for n in args.idle_counts.split(",")]
        print("\nMemory per idle keep-alive connection (server RSS delta / connections, "
              "hello app, each connection served one request)\n")
        print("| server | " + " | ".join(f"{n:,} conns KiB/conn" for n in counts) + " |")
        print("|---|" + "---:|" * len(counts))
        for name in names:
            row = []
            for count in counts:
                port = free_port()
                cmd = server_commands("bench_apps:hello", port, args.baseline, str(tmp),
                                      compiled=compiled)[name]
                try:
                    with Running(cmd, port, env, tmp) as server:
                        row.append(f"{idle_connection_cost(server, count):.1f}")
                except (RuntimeError, OSError) as exc:
                    print(f"# {name} {count}: {exc}", file=sys.stderr)
                    row.append("-")
            print(f"| {name} | " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
