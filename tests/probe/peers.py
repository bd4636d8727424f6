"""Real peers for the probe, shared by the tests and scripts/implementation_status.py:
each ``running`` context starts a process on a loopback port and stops it (terminate,
then kill) on exit. No pytest here, so the script can import it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import free_port  # noqa: F401  (re-exported)

HERE = Path(__file__).resolve().parent
NGINX = "/usr/sbin/nginx"
NODE = "/usr/bin/node"



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


def uvicorn_cmd(port: int) -> list[str]:
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "asgi_app:app"]
    return [*cmd, "--port", str(port), "--log-level", "warning", "--timeout-keep-alive", "1"]


def onehop_cmd(port: int) -> list[str]:
    """onehop's own server running the same app as uvicorn, same idle timeout."""
    cmd = [sys.executable, "-m", "onehop", "serve", "--app-dir", str(HERE), "asgi_app:app"]
    return [*cmd, "--port", str(port), "--log-level", "warning", "--timeout-keep-alive", "1",
            "--no-access-log"]


def onehop_proxy_cmd(port: int, origin_port: int) -> list[str]:
    """onehop's own reverse proxy on *port*, forwarding to the probe's origin on *origin_port*."""
    return [sys.executable, "-m", "onehop", "proxy", "--listen", f"127.0.0.1:{port}",
            "--upstream", f"http://127.0.0.1:{origin_port}", "--no-access-log"]


def node_cmd(port: int, keep_alive_ms: int = 1000) -> list[str]:
    return [NODE, str(HERE / "node_server.js"), str(port), str(keep_alive_ms)]


def naive_proxy_cmd(port: int, origin_port: int) -> list[str]:
    return [sys.executable, str(HERE / "naive_proxy.py"), str(port), str(origin_port)]


def nginx_origin_body(port: int, root: Path) -> str:
    return f"server {{ listen 127.0.0.1:{port}; root {root}; location = /204 {{ return 204; }} }}\n"


def nginx_proxy_body(port: int, origin_port: int) -> str:
    return f"""
upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 4; }}
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://origin;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
    }}
}}
"""


def leaky_h2_cmd(port: int) -> list[str]:
    """The careless HTTP/2 server (the HTTP/2 checks' negative control), cleartext."""
    return [sys.executable, str(HERE / "leaky_h2_server.py"), str(port)]


def hypercorn_cmd(port: int) -> list[str]:
    """hypercorn serving the same app as uvicorn (HTTP/1.1 and h2c on one port)."""
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); "
            "from hypercorn.__main__ import main; "
            f"sys.exit(main(['--bind', '127.0.0.1:{port}', '--log-level', 'warning', "
            "'asgi_app:app']))")
    return [sys.executable, "-c", code]


def nginx_h2_body(port: int, root: Path) -> str:
    """nginx serving *root* over h2c by prior knowledge (``listen ... http2``; nginx 1.25.1
    spells it ``http2 on``)."""
    return f"server {{ listen 127.0.0.1:{port} http2; root {root}; }}\n"


def onehop_leaky_cmd(port: int) -> list[str]:
    """``onehop serve`` running an app that sets every connection-specific field on every
    answer (``tests.server.apps:leaky_site``): what reaches an HTTP/2 client is onehop's
    doing. Over HTTP/1.1 the fields go out as the app set them."""
    root = HERE.parent.parent
    return [sys.executable, "-m", "onehop", "serve", "--app-dir", str(root),
            "tests.server.apps:leaky_site", "--port", str(port), "--log-level", "warning",
            "--no-access-log"]
