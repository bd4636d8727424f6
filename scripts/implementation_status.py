"""Start every real peer on free loopback ports, run ``onehop probe matrix`` against them,
and write docs/implementation-status.md. Run via scripts/implementation-status.sh.

Every peer is started by ``tests.probe.peers.running`` and stopped (terminate, then kill)
when the run ends, whatever happens.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from onehop.probe.cli import main  # noqa: E402
from tests.probe import peers  # noqa: E402

OUT = ROOT / "docs" / "implementation-status.md"


def _version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "?"


def main_() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="onehop-status-"))
    www = tmp / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the implementation-status run\n")
    targets: list[str] = []
    with contextlib.ExitStack() as stack:

        def start(cmd: list[str], port: int) -> None:
            stack.enter_context(peers.running(cmd, port))

        def server(label: str, port: int, path: str, no_content: str | None = None) -> None:
            extra = f'no-content-path = "{no_content}"\n' if no_content else ""
            url = f"http://127.0.0.1:{port}{path}"
            head = f'[[target]]\nlabel = "{label}"\nkind = "server"\n'
            targets.append(f'{head}url = "{url}"\n{extra}')

        def proxy(label: str, port: int, origin_port: int) -> None:
            targets.append(
                f'[[target]]\nlabel = "{label}"\nkind = "proxy"\n'
                f'address = "127.0.0.1:{port}"\norigin-port = {origin_port}\n'
            )

        p = peers.free_port()
        start(peers.http_server_cmd(p, www, "HTTP/1.1"), p)
        server("http.server (1.1)", p, "/index.html")

        p = peers.free_port()
        start(peers.uvicorn_cmd(p), p)
        server("uvicorn", p, "/", "/204")

        if shutil.which(peers.NGINX):
            p = peers.free_port()
            d = tmp / "nginx-origin"
            d.mkdir()
            start(peers.nginx_cmd(d, peers.nginx_conf(d, p, peers.nginx_origin_body(p, www))), p)
            server("nginx", p, "/index.html", "/204")

        if shutil.which(peers.NODE):
            p = peers.free_port()
            start(peers.node_cmd(p, 1000), p)
            server("Node.js http", p, "/", "/204")

        p = peers.free_port()
        start(peers.onehop_cmd(p), p)
        server("onehop server", p, "/", "/204")

        if shutil.which(peers.NGINX):
            p, o = peers.free_port(), peers.free_port()
            d = tmp / "nginx-proxy"
            d.mkdir()
            start(peers.nginx_cmd(d, peers.nginx_conf(d, p, peers.nginx_proxy_body(p, o))), p)
            proxy("nginx proxy", p, o)

        p, o = peers.free_port(), peers.free_port()
        start(peers.naive_proxy_cmd(p, o), p)
        proxy("naive proxy", p, o)

        p, o = peers.free_port(), peers.free_port()
        start(peers.onehop_proxy_cmd(p, o), p)
        proxy("onehop proxy", p, o)

        config = tmp / "targets.toml"
        config.write_text("timeout = 3.0\nidle-limit = 3.0\n\n" + "\n".join(targets))
        table = tmp / "table.md"
        status = main(["probe", "matrix", str(config), "--markdown", str(table)])

        # HTTP/2 (cleartext, prior knowledge): the same checks for every peer.
        h2_targets: list[str] = []

        def http2(label: str, port: int, paths: tuple[str, ...] = ()) -> None:
            listed = ", ".join(f'"{p}"' for p in paths)
            h2_targets.append(f'[[target]]\nlabel = "{label}"\nkind = "http2"\n'
                              f'url = "http://127.0.0.1:{port}/"\npaths = [{listed}]\n')

        if shutil.which(peers.NGINX):
            p = peers.free_port()
            d = tmp / "nginx-h2"
            d.mkdir()
            start(peers.nginx_cmd(d, peers.nginx_conf(d, p, peers.nginx_h2_body(p, www))), p)
            http2("nginx (http2)", p, ("/index.html",))
        p = peers.free_port()
        start(peers.hypercorn_cmd(p), p)
        http2("hypercorn", p)
        leaky_origin = peers.free_port()
        start(peers.onehop_leaky_cmd(leaky_origin), leaky_origin)
        http2("onehop serve (leaky app)", leaky_origin, ("/r/1.js",))
        p = peers.free_port()
        start(peers.onehop_proxy_cmd(p, leaky_origin), p)
        http2("onehop proxy (leaky origin)", p, ("/r/1.js",))
        p = peers.free_port()
        start(peers.leaky_h2_cmd(p), p)
        http2("leaky h2 server", p)
        h2_config = tmp / "h2-targets.toml"
        h2_config.write_text("timeout = 3.0\n\n" + "\n".join(h2_targets))
        h2_table = tmp / "h2-table.md"
        h2_status = main(["probe", "matrix", str(h2_config), "--markdown", str(h2_table)])
    if status == 2 or h2_status == 2:
        return 2
    versions = [
        f"Python {sys.version.split()[0]} (http.server)",
        "uvicorn " + _version([sys.executable, "-m", "uvicorn", "--version"]).split()[2],
        _version([peers.NGINX, "-v"]).replace("nginx version: ", ""),
        "Node.js " + _version([peers.NODE, "--version"]),
    ]
    today = datetime.date.today().isoformat()
    OUT.write_text(
        "# Implementation status: the Connection rules across real HTTP/1.x and HTTP/2 peers\n\n"
        "Generated by `scripts/implementation-status.sh` on "
        f"{today} with {', '.join(versions)}.\n"
        "Each column is one target; each row one `onehop probe` check, named by the RFC "
        "sentence it derives from (`onehop probe server|proxy --json` prints the sentence).\n"
        "**FAIL** means the peer broke the sentence on the wire; info means a measurement or "
        "an allowed choice; n/a means the check is for another kind of target.\n\n"
        "The naive proxy relays bytes verbatim on purpose: its FAIL cells prove the "
        "stripping checks can fail. The onehop columns are onehop's own server "
        "(`onehop serve`) and reverse proxy (`onehop proxy`), which CI probes on every run."
        "\n\n## Re-run\n\n```sh\nscripts/implementation-status.sh   # needs nginx and node on "
        "PATH; about two minutes\n```\n\nor probe any peer yourself:\n\n```sh\n"
        "onehop probe server http://127.0.0.1:8080/ --no-content-path /204\n"
        "onehop probe proxy 127.0.0.1:8081 --origin-port 9000\n"
        "onehop probe client -- curl -s {url}/a {url}/b\n"
        "onehop probe server --http2 http://127.0.0.1:8080/ --path /a   # or https:// (ALPN)\n"
        "onehop probe matrix targets.toml --markdown status.md\n```\n\n## Table\n\n"
        + table.read_text()
        + "\n## HTTP/2: no connection-specific fields (RFC 9113 §8.2.2)\n\n"
        "An HTTP/2 message carries no `Connection`, `Keep-Alive`, `Proxy-Connection`, "
        "`Transfer-Encoding` or `Upgrade`, and `TE` only as `trailers` in a request: a "
        "response with one is malformed (Safari refuses it; Chrome and Firefox let it "
        "through, which is how it goes unnoticed), and a request with one must not be "
        "served (a `Transfer-Encoding` passed on to an HTTP/1.1 back end would let a client "
        "smuggle requests). Every peer is probed over cleartext by prior knowledge "
        f"(hypercorn {importlib.metadata.version('hypercorn')}). "
        "onehop serve runs an app that sets every one of those fields on every answer "
        "(`tests/server/apps.py:leaky_site`), and onehop proxy forwards to that server over "
        "HTTP/1.1, where the fields are on the wire; the leaky h2 server "
        "(`tests/probe/leaky_h2_server.py`) sends them over HTTP/2 and serves malformed "
        "requests, on purpose: its FAIL cells prove the checks can fail.\n\n"
        + h2_table.read_text()
    )
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
