"""Compare onehop serve with other ASGI servers under wrk (issue 3, "Speed").

Runs the same raw-ASGI hello-world app and a small Starlette JSON endpoint
under each server installed (onehop, uvicorn+httptools, uvicorn+h11,
hypercorn, granian), one worker each, server pinned to CPU 0 and wrk to CPU 1,
in three modes: keep-alive, ``Connection: close`` on every request, and
HTTP/1.0 keep-alive. Prints requests/s, p99 latency and peak RSS, with ratios
to onehop.

    python benchmarks/server.py [--duration 5] [--connections 50]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APPS = '''
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

    starlette_app = Starlette(routes=[Route("/", _json)])
except ImportError:
    starlette_app = None
'''

HTTP10_LUA = '''
request = function()
  return "GET / HTTP/1.0\\r\\nHost: x\\r\\nConnection: keep-alive\\r\\n\\r\\n"
end
'''

MODES = {
    "keep-alive": [],
    "close": ["-H", "Connection: close"],
    "http/1.0 keep-alive": ["-s", "{lua}"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _servers(app: str, port: int) -> dict[str, list[str]]:
    py = sys.executable
    out = {
        "onehop": [py, "-c", "import sys; from onehop.server import serve; "
                   f"serve({app!r}, port={port}, access_log=False, log_level='warning')"],
    }
    if importlib.util.find_spec("uvicorn"):
        base = [py, "-m", "uvicorn", app, "--port", str(port), "--no-access-log",
                "--log-level", "warning", "--loop", "uvloop"]
        if importlib.util.find_spec("httptools"):
            out["uvicorn+httptools"] = [*base, "--http", "httptools"]
        out["uvicorn+h11"] = [*base, "--http", "h11"]
    if importlib.util.find_spec("hypercorn"):
        out["hypercorn"] = [py, "-m", "hypercorn", app, "-b", f"127.0.0.1:{port}"]
    if shutil.which("granian"):
        out["granian"] = ["granian", "--interface", "asgi", "--port", str(port), app]
    return out


def _wait_port(port: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def _peak_rss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) if match else 0


def _wrk(port: int, mode_args: list[str], duration: int, conns: int) -> tuple[float, float]:
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
           *mode_args, f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    latency = 0.0
    if p99:
        latency = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return (float(rps.group(1)) if rps else 0.0), latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp())
    (tmp / "bench_apps.py").write_text(APPS)
    lua = tmp / "http10.lua"
    lua.write_text(HTTP10_LUA)
    env = {**os.environ, "PYTHONPATH": f"{tmp}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    rows: list[tuple[str, str, str, float, float, int]] = []
    for app_name in ("hello", "starlette_app"):
        app = f"bench_apps:{app_name}"
        for mode, mode_args in MODES.items():
            margs = [a.replace("{lua}", str(lua)) for a in mode_args]
            port = _free_port()
            for name, cmd in _servers(app, port).items():
                proc = subprocess.Popen(["taskset", "-c", "0", *cmd], env=env, cwd=tmp,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    if not _wait_port(port):
                        print(f"{name} did not start", file=sys.stderr)
                        continue
                    rps, p99 = _wrk(port, margs, args.duration, args.connections)
                    rows.append((app_name, mode, name, rps, p99, _peak_rss_kib(proc.pid)))
                finally:
                    proc.terminate()
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
    print("| app | mode | server | req/s | ratio to onehop | p99 ms | peak RSS MiB |")
    print("|---|---|---|---:|---:|---:|---:|")
    base = {(a, m): r for a, m, n, r, _, _ in rows if n == "onehop"}
    for app_name, mode, name, rps, p99, rss in rows:
        ref = base.get((app_name, mode)) or 0.0
        ratio = f"{rps / ref:.2f}" if ref else "-"
        print(f"| {app_name} | {mode} | {name} | {rps:,.0f} | {ratio} | {p99:.2f} | "
              f"{rss / 1024:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
