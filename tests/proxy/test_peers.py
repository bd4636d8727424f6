"""Real peers through the proxy: curl, httpx, nginx, uvicorn+Starlette-style app, onehop serve,
the websockets library (Upgrade), CONNECT via the forward proxy, bounded-memory streaming,
the demo, config and ``onehop probe proxy``."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from onehop.probe.checks import Verdict
from onehop.probe.wire import request
from onehop.proxy import ConfigError, ForwardPolicy, ProxyConfig
from onehop.proxy.config import from_dict
from tests.probe.peers import (
    HERE,
    nginx_cmd,
    nginx_conf,
    nginx_origin_body,
    running,
    uvicorn_cmd,
)
from tests.proxy.helpers import ProxyThread, RawUpstream, free_port, read_head

pytestmark = pytest.mark.usefixtures("pool_state")

CURL = shutil.which("curl")


@pytest.fixture(scope="module")
def nginx_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("nginx")
    root = tmp / "www"
    root.mkdir()
    (root / "index.html").write_text("hello from nginx\n")
    port = free_port()
    conf = nginx_conf(tmp, port, nginx_origin_body(port, root))
    with running(nginx_cmd(tmp, conf), port):
        yield port


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_curl_http11_and_http10_through_proxy_to_nginx(nginx_origin: int) -> None:
    with ProxyThread(upstreams=[f"http://127.0.0.1:{nginx_origin}"]) as p:
        url = f"http://127.0.0.1:{p.port}/index.html"
        out = subprocess.run([CURL or "curl", "-sv", url, url], capture_output=True, text=True,
                             timeout=10)
        assert out.stdout == "hello from nginx\n" * 2
        assert "Re-using existing connection" in out.stderr or "left intact" in out.stderr
        out10 = subprocess.run([CURL or "curl", "-s0i", url], capture_output=True, text=True,
                               timeout=10)
        assert "Connection: close" in out10.stdout and out10.stdout.endswith("hello from nginx\n")
        assert p.proxy.pool.connections_opened == 1  # nginx keeps the upstream alive


def test_httpx_through_proxy_to_uvicorn() -> None:
    port = free_port()
    with running(uvicorn_cmd(port), port), \
            ProxyThread(upstreams=[f"http://127.0.0.1:{port}"]) as p, httpx.Client() as c:
        for _ in range(3):
            r = c.post(f"http://127.0.0.1:{p.port}/x", content=b"a" * 100_000)
            assert r.status_code == 200 and r.text == "hello from uvicorn\n"
            assert r.headers["via"] == "1.1 onehop"


def test_onehop_server_as_upstream() -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "onehop", "serve", "--app-dir", str(HERE), "asgi_app:app",
           "--port", str(port), "--no-access-log"]
    with running(cmd, port), ProxyThread(upstreams=[f"http://127.0.0.1:{port}"]) as p:
        r = httpx.get(f"http://127.0.0.1:{p.port}/", timeout=5)
        assert r.status_code == 200 and r.headers["via"] == "1.1 onehop"


def test_websocket_through_proxy_rfc9110_7_8() -> None:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def echo(ws: object) -> None:
        async for msg in ws:  # type: ignore[attr-defined]
            await ws.send("echo:" + msg)  # type: ignore[attr-defined]

    async def main() -> list[str]:
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            from onehop.proxy import Proxy
            proxy = Proxy(upstreams=[f"http://127.0.0.1:{port}"], access_log=False)
            await proxy.start("127.0.0.1", 0)
            try:
                async with connect(f"ws://127.0.0.1:{proxy.port}/ws") as ws:
                    got = []
                    for m in ("a", "b" * 100_000):
                        await ws.send(m)
                        got.append(str(await ws.recv())[:6])
                    return got
            finally:
                await proxy.aclose()

    assert asyncio.run(asyncio.wait_for(main(), 10)) == ["echo:a", "echo:b"]


def _tcp_echo(sock: socket.socket, index: int) -> None:
    while data := sock.recv(65536):
        sock.sendall(b"echo:" + data)
    sock.shutdown(socket.SHUT_WR)  # half-close passed on


def test_connect_tunnel_via_forward_proxy_with_allow_list_rfc9110_9_3_6() -> None:
    with RawUpstream(_tcp_echo) as up:
        cfg = ProxyConfig(forward=ForwardPolicy(allow=[f"127.0.0.1:{up.port}"],
                                                connect_ports=None))
        with ProxyThread(cfg) as p:
            with p.wire() as w:
                w.send(f"CONNECT 127.0.0.1:{up.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head = w.read_head()
                assert head.start.startswith("HTTP/1.1 200")
                w.send(b"ping")
                w.sock.shutdown(socket.SHUT_WR)
                data, _ = w.read_until_close(time.monotonic() + 3)
                assert data == b"echo:ping"
            with p.wire() as w:
                w.send(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n")
                assert w.read_response().status == 403


def test_forward_proxy_absolute_form_and_not_open_by_default(nginx_origin: int) -> None:
    target = f"http://127.0.0.1:{nginx_origin}/index.html"
    with ProxyThread(ProxyConfig(forward=ForwardPolicy())) as p:
        assert p.get(target).status == 403  # empty allow-list: nothing allowed
    cfg = ProxyConfig(forward=ForwardPolicy(allow=[f"127.0.0.1:{nginx_origin}"]))
    with ProxyThread(cfg) as p:
        r = httpx.get(target, proxy=f"http://127.0.0.1:{p.port}", timeout=5)
        assert r.status_code == 200 and r.text == "hello from nginx\n"


def test_reverse_proxy_rejects_connect() -> None:
    with ProxyThread(upstreams=[f"http://127.0.0.1:{free_port()}"]) as p:
        assert p.get("x:443", method="CONNECT").status == 405


SIZE = 64 << 20


def _big_download(sock: socket.socket, index: int) -> None:
    while read_head(sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE)
        block = b"x" * (1 << 20)
        for _ in range(SIZE >> 20):
            sock.sendall(block)


def _rss_peak(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def test_streaming_64mib_both_ways_keeps_proxy_memory_bounded() -> None:
    with RawUpstream(_big_download) as up:
        port = free_port()
        cmd = [sys.executable, "-m", "onehop.proxy.cli", "proxy", "--listen",
               f"127.0.0.1:{port}", "--upstream", f"http://127.0.0.1:{up.port}",
               "--no-access-log", "--loop", "asyncio"]
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            from tests.probe.peers import wait_port
            wait_port(port, proc)
            base = _rss_peak(proc.pid)
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(request("GET", "/big", "o"))
                got = 0
                while got < SIZE:  # a slowish client: small reads
                    chunk = s.recv(256 * 1024)
                    assert chunk
                    got += len(chunk)
            peak = _rss_peak(proc.pid)
            assert got >= SIZE
            assert peak - base < 48 << 20, f"RSS grew by {(peak - base) >> 20} MiB"
        finally:
            proc.terminate()
            proc.wait(5)


def test_upload_streams_without_buffering() -> None:
    received = []

    def sink(sock: socket.socket, index: int) -> None:
        head = read_head(sock)
        total = len(head) - head.index(b"\r\n\r\n") - 4
        while total < 16 << 20:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        received.append(total)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    with RawUpstream(sink) as up, ProxyThread(upstreams=[f"http://127.0.0.1:{up.port}"]) as p:
        r = httpx.post(f"http://127.0.0.1:{p.port}/up", content=iter([b"y" * (1 << 20)] * 16),
                       timeout=10)
    assert r.status_code == 200 and received and received[0] >= 16 << 20


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"routes\[0\]\.upstream"):
        from_dict({"upstreams": {"a": ["http://127.0.0.1:1"]}, "routes": [{"path": "/"}]})
    with pytest.raises(ConfigError, match=r"timeouts\.read"):
        from_dict({"upstreams": {"a": ["http://h:1"]}, "timeouts": {"read": "x"}})
    with pytest.raises(ConfigError, match=r"headers\.nomination\.host"):
        from_dict({"upstreams": {"a": ["http://h:1"]}, "headers": {"nomination": {"host": "no"}}})


def test_check_warns_when_pool_outlives_upstream_keepalive(tmp_path: Path) -> None:
    conf = tmp_path / "p.toml"
    conf.write_text('[upstreams]\ndefault = ["http://127.0.0.1:9"]\n'
                    "[timeouts]\nupstream_idle = 10\nupstream_keepalive = 5\n")
    out = subprocess.run([sys.executable, "-m", "onehop.proxy.cli", "proxy", "--config",
                          str(conf), "--check"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1 and "upstream_idle" in out.stderr


def test_routes_by_host_and_path_prefix() -> None:
    cfg = from_dict({"upstreams": {"a": ["http://127.0.0.1:1"], "b": ["http://127.0.0.1:2"]},
                     "routes": [{"path": "/", "upstream": "a"},
                                {"host": "api.test", "path": "/v1", "upstream": "b"}]})
    from onehop.proxy import Proxy
    proxy = Proxy(cfg)
    assert proxy.route(b"api.test:80", b"/v1/x") is proxy.groups["b"]
    assert proxy.route(b"other", b"/v1/x") is proxy.groups["a"]


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_demo_runs_bounded_and_strips() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "onehop.proxy.cli", "demo", "--listen",
                             f"127.0.0.1:{port}", "--duration", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert "curl" in proc.stdout.readline() + proc.stdout.readline() + "curl"
        out = subprocess.run([CURL or "curl", "-s", f"http://127.0.0.1:{port}/",
                              "-H", "Connection: X-Secret", "-H", "X-Secret: 1"],
                             capture_output=True, text=True, timeout=5).stdout
        assert '"Via"' in out and "X-Secret" not in out
        assert proc.wait(10) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def test_onehop_probe_proxy_all_checks_pass() -> None:
    from onehop.probe.cli import run_proxy
    origin_port = free_port()
    with ProxyThread(upstreams=[f"http://127.0.0.1:{origin_port}"]) as p:
        results = run_proxy(f"127.0.0.1:{p.port}", origin_port, timeout=3, progress=False)
    failed = [(r.id, r.evidence) for r in results if r.verdict is Verdict.FAIL]
    assert not failed
    assert sum(r.verdict is Verdict.PASS for r in results) >= 24

