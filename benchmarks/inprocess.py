"""Instructions per request, in process, under callgrind: the figure that moves least on a
shared machine (requests/s swing by 2x between hours here; instruction counts by < 1%).

    python benchmarks/inprocess.py server                 # the pure build, from src/
    python benchmarks/inprocess.py proxy
    python benchmarks/inprocess.py server --python /tmp/vc/bin/python   # the compiled build
    python benchmarks/inprocess.py proxy --src /tmp/old/src             # another tree
    python benchmarks/inprocess.py proxy --connections 400              # more client connections

``server``: a keep-alive GET to a raw-ASGI hello-world app through the serving endpoint and
the ASGI handler, fed by a fake transport (no sockets: onehop's own work, the app's task
and the event loop). ``proxy``: wrk-like keep-alive clients, ``onehop proxy`` and a minimal
origin, all in one uvloop over loopback sockets (the client and origin are Python too, so
compare proxy figures with each other, not with the server's). Each runs twice under
``valgrind --tool=callgrind`` (N and 4N requests) and the difference is divided by 3N, so
start-up and warm-up cancel out. User-space instructions only: the kernel's share of a
request is not counted. Needs valgrind and uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, world!")


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


class FakeTransport:
    """Just enough of a transport for the serving endpoint; counts writes."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name in ("peername", "sockname") else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def can_write_eof(self) -> bool:
        return True


async def serve_requests(n: int) -> None:
    from onehop._aio.endpoint import ServerEndpoint
    from onehop._aio.serving import ServingState
    from onehop.server import Config
    from onehop.server.asgi import AsgiService

    config = Config(app=hello, access_log=False, max_requests_per_connection=None)
    state = ServingState(config.serving_config())
    service = AsgiService(hello, config)
    endpoint = ServerEndpoint(state, lambda e: service)
    transport = FakeTransport()
    endpoint.connection_made(transport)  # type: ignore[arg-type]
    for _ in range(n):
        endpoint.data_received(REQUEST)
        await asyncio.sleep(0)  # (the app's task runs)
        await asyncio.sleep(0)
    if transport.writes < n:
        raise SystemExit(f"only {transport.writes} of {n} responses written")


class Origin(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self.transport.write(RESPONSE)


class Client(asyncio.Protocol):
    """A wrk-like keep-alive client: the next request once the last answer is in."""

    def __init__(self, left: int, done: asyncio.Future[None]) -> None:
        self.left = left
        self.done = done
        self.buffer = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (i := self.buffer.find(b"Hello, world!")) >= 0:
            self.buffer = self.buffer[i + 13:]
            self.left -= 1
            if self.left <= 0:
                self.done.set_result(None)
                return
            self.transport.write(REQUEST)


async def proxy_requests(n: int, connections: int) -> None:
    from onehop.proxy.proxy import Proxy

    loop = asyncio.get_running_loop()
    origin = await loop.create_server(Origin, "127.0.0.1", 0)
    proxy = Proxy(upstreams=[f"http://127.0.0.1:{origin.sockets[0].getsockname()[1]}"],
                  access_log=False)
    await proxy.start("127.0.0.1", 0)
    done = []
    for _ in range(connections):
        future: asyncio.Future[None] = loop.create_future()
        done.append(future)
        await loop.create_connection(lambda f=future: Client(max(1, n // connections), f),
                                     "127.0.0.1", proxy.port)
    await asyncio.gather(*done)
    await proxy.aclose()
    origin.close()


def child(role: str, n: int, connections: int) -> None:
    import uvloop

    loop = uvloop.new_event_loop()
    if role == "server":
        loop.run_until_complete(serve_requests(n))
    else:
        loop.run_until_complete(proxy_requests(n, connections))


def instructions(python: str, env: dict[str, str], role: str, n: int, connections: int) -> int:
    """Instructions callgrind counts for one child run of *n* requests."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out", python,
             __file__, "--child", role, str(n), "--connections", str(connections)],
            capture_output=True, text=True, env=env, cwd=tmp)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode or not found:
        raise SystemExit(f"{role} run failed: {out.stderr.strip()[-500:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", nargs="?", choices=("server", "proxy"))
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter (a venv's, for its installed onehop)")
    parser.add_argument("--src", default=None,
                        help="onehop source tree on PYTHONPATH (default: this repository's "
                             "src/, unless --python is given)")
    parser.add_argument("--requests", type=int, default=2000, help="N (default 2000)")
    parser.add_argument("--connections", type=int, default=10,
                        help="proxy: client connections (default 10)")
    parser.add_argument("--child", nargs=2, metavar=("ROLE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.connections)
        return 0
    if args.role is None:
        parser.error("say which: server or proxy")
    if shutil.which("valgrind") is None:
        raise SystemExit("inprocess.py needs valgrind (apt-get install valgrind)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    src = args.src
    if src is None and args.python == sys.executable:
        src = str(Path(__file__).resolve().parents[1] / "src")
    if src:
        env["PYTHONPATH"] = src
    n = args.requests
    low = instructions(args.python, env, args.role, n, args.connections)
    high = instructions(args.python, env, args.role, 4 * n, args.connections)
    build = subprocess.run([args.python, "-c", "import onehop; print(onehop.compiled)"],
                           capture_output=True, text=True, env=env, cwd="/").stdout.strip()
    label = "compiled" if build == "True" else "pure"
    print(f"{args.role}: {(high - low) / (3 * n):,.0f} instructions per request "
          f"({label} build{', src ' + src if src else ''}"
          f"{f', {args.connections} connections' if args.role == 'proxy' else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
