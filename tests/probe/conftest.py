"""Real peers for the probe: each fixture starts a process on a free loopback port and
stops it (terminate, then kill) when the test module is done."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"peer exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


@contextlib.contextmanager
def running(cmd: list[str], port: int, cwd: Path | None = None) -> Iterator[int]:
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def http_server_cmd(port: int, root: Path, version: str) -> list[str]:
    code = textwrap.dedent(
        f"""
        import functools, http.server
        class H(http.server.SimpleHTTPRequestHandler):
            protocol_version = {version!r}
            def log_message(self, *a): pass
        h = functools.partial(H, directory={str(root)!r})
        http.server.ThreadingHTTPServer(("127.0.0.1", {port}), h).serve_forever()
        """
    )
    return [sys.executable, "-c", code]


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("www")
    (root / "index.html").write_text("hello from the probe tests\n")
    return root


def nginx_conf(tmp: Path, port: int, body: str) -> Path:
    for d in ("logs", "tmp"):
        (tmp / d).mkdir(exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            daemon off;
            master_process off;
            pid {tmp}/nginx.pid;
            error_log {tmp}/logs/error.log warn;
            events {{ worker_connections 128; }}
            http {{
                access_log off;
                client_body_temp_path {tmp}/tmp/body;
                proxy_temp_path {tmp}/tmp/proxy;
                fastcgi_temp_path {tmp}/tmp/fcgi;
                uwsgi_temp_path {tmp}/tmp/uwsgi;
                scgi_temp_path {tmp}/tmp/scgi;
                keepalive_timeout 2s;
            """
        )
        + textwrap.indent(body, "    ")
        + "\n}\n"
    )
    return conf


def nginx_cmd(tmp: Path, conf: Path) -> list[str]:
    return [NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "logs" / "error.log")]


needs_nginx = pytest.mark.skipif(not shutil.which(NGINX), reason="nginx not installed")
