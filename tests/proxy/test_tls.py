"""The proxy over TLS (issue 13, items 3 and 6): listening with ``--ssl-*`` (and TOML
``[tls]``), ``https://`` upstreams verified by default, the CONNECT port flag and its
403, ``--check``, a busy port, and the proxy's log lines; real peers (curl, a TLS origin)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from onehop.proxy import ProxyConfig
from onehop.proxy.config import ConfigError, from_dict
from tests.helpers import ROOT, free_port, onehop_process, wait_for
from tests.proxy.helpers import ProxyThread, RawUpstream, read_head
from tests.server.certs import Certs, make_certs
from tests.server.helpers import running

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("curl") is None,
                       reason="needs the openssl and curl commands (.ci/run installs them)"),
]



@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """The origin: answers with its scope's scheme and the request's fields, as JSON."""
    body = json.dumps({"scheme": scope["scheme"], "headers": {
        k.decode(): v.decode() for k, v in scope["headers"]}}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def proxy_cli(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m onehop proxy ARGS`` (stdout and stderr apart); reaped with its workers."""
    with onehop_process("proxy", *args) as proc:
        yield proc


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_proxy_listens_with_tls_and_the_upstream_learns_https(certs: Certs,
                                                              workers: str) -> None:
    port = free_port()
    with running(echo, proxy_headers=False) as origin, proxy_cli(
            "--listen", f"127.0.0.1:{port}", "--upstream", f"http://127.0.0.1:{origin.port}",
            "--ssl-certfile", certs.cert, "--ssl-keyfile", certs.key,
            "--workers", workers) as proc:
        assert wait_for(lambda: accepts(port))
        out = curl("-v", "--cacert", certs.ca, f"https://localhost:{port}/x")
        assert out.returncode == 0, out.stderr
        seen = json.loads(out.stdout)
        assert seen["headers"]["x-forwarded-proto"] == "https"
        assert seen["scheme"] == "http"  # (the hop to the origin is plain)
        assert "ALPN: server accepted h2" in out.stderr  # (HTTP/2 from the client, 1.1 up)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert f"listening on https://127.0.0.1:{port}" in err


def test_proxy_lines_carry_timestamps_and_a_start_and_stop_line(certs: Certs) -> None:
    port = free_port()
    with running(echo) as origin, proxy_cli(
            "--listen", f"127.0.0.1:{port}", "--upstream",
            f"http://127.0.0.1:{origin.port}") as proc:
        assert wait_for(lambda: accepts(port))
        assert curl(f"http://127.0.0.1:{port}/a").returncode == 0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO:     "
    assert re.search(stamp + rf"onehop proxy \(reverse\) listening on http://127\.0\.0\.1:{port}",
                     err), err
    assert re.search(stamp + rf"onehop proxy process \[\d+\] serving on http://127\.0\.0\.1:"
                     rf"{port}", err)
    assert re.search(stamp + r"onehop proxy process \[\d+\] shutting down: 0 connection", err)
    assert re.search(stamp + r"onehop proxy process \[\d+\] stopped serving on ", err)
    assert re.search(stamp + r'127\.0\.0\.1:\d+ "GET /a HTTP/1\.1" 200 \d+ upstream=', out), out


def test_https_upstream_is_verified_against_upstream_ca(certs: Certs) -> None:
    with running(echo, ssl_certfile=certs.cert, ssl_keyfile=certs.key,
                 proxy_headers=False) as origin:
        cfg = ProxyConfig(upstreams={"default": [f"https://localhost:{origin.port}"]},
                          upstream_ca=certs.ca)
        with ProxyThread(cfg) as p:
            first = p.get("/one")
            second = p.get("/two")
            opened = p.proxy.pool.connections_opened
    assert first.status == 200 and json.loads(first.body)["scheme"] == "https"
    assert second.status == 200 and opened == 1  # the TLS connection is reused


def test_https_upstream_signed_by_an_unknown_ca_is_a_502(certs: Certs) -> None:
    with running(echo, ssl_certfile=certs.cert, ssl_keyfile=certs.key) as origin:
        cfg = ProxyConfig(upstreams={"default": [f"https://localhost:{origin.port}"]})
        with ProxyThread(cfg) as p:
            answer = p.get("/")
    assert answer.status == 502


def test_upstream_verify_false_is_the_explicit_escape_hatch(certs: Certs,
                                                             tmp_path: Path) -> None:
    with running(echo, ssl_certfile=certs.cert, ssl_keyfile=certs.key,
                 proxy_headers=False) as origin:
        conf = tmp_path / "p.toml"
        conf.write_text(f'upstream_verify = false\n[upstreams]\ndefault = '
                        f'["https://127.0.0.1:{origin.port}"]\n')
        port = free_port()
        with proxy_cli("--config", str(conf), "--listen", f"127.0.0.1:{port}"):
            assert wait_for(lambda: accepts(port))
            out = curl(f"http://127.0.0.1:{port}/")
    assert out.returncode == 0 and json.loads(out.stdout)["scheme"] == "https"


def test_toml_tls_table_and_upstream_keys_are_read_and_named_in_errors(certs: Certs) -> None:
    cfg = from_dict({"upstreams": {"a": ["https://h"]}, "upstream_ca": certs.ca,
                     "tls": {"certfile": certs.cert, "keyfile": certs.key, "cert_reqs": 0}})
    assert cfg.tls is not None and cfg.tls.keyfile == certs.key
    assert cfg.upstream_ssl_context() is not None
    with pytest.raises(ConfigError, match=r"tls\.keyfle: unknown key"):
        from_dict({"upstreams": {"a": ["http://h"]}, "tls": {"certfile": "c", "keyfle": "k"}})
    with pytest.raises(ConfigError, match=r"tls\.certfile: missing"):
        from_dict({"upstreams": {"a": ["http://h"]}, "tls": {"keyfile": "k"}})
    with pytest.raises(ConfigError, match=r"upstream_ca: unused with upstream_verify = false"):
        from_dict({"upstreams": {"a": ["https://h"]}, "upstream_ca": certs.ca,
                   "upstream_verify": False})
    with pytest.raises(ConfigError, match=r"upstream_ca: no such file"):
        from_dict({"upstreams": {"a": ["https://h"]}, "upstream_ca": "/nope.pem"})
    with pytest.raises(ConfigError, match=r"expected http\(s\)://HOST"):
        from_dict({"upstreams": {"a": ["ftp://h"]}})
    assert from_dict({"forward": {"allow": ["*:*"], "connect_ports": "*"}}).forward is not None


def _proxy_fails(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onehop", "proxy", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=20)


def test_check_says_config_ok_and_exits_0(tmp_path: Path) -> None:
    done = _proxy_fails("--upstream", "http://127.0.0.1:9", "--check")
    assert done.returncode == 0 and done.stdout == "config OK\n" and done.stderr == ""


def test_check_with_a_bad_tls_file_is_one_line_and_exit_2(certs: Certs) -> None:
    done = _proxy_fails("--upstream", "http://127.0.0.1:9", "--ssl-certfile", certs.cert,
                        "--ssl-keyfile", certs.client_key, "--check")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"onehop proxy: tls: cannot load the TLS certificate {certs.cert!r} and key "
        f"{certs.client_key!r}: key values mismatch"]


def test_port_in_use_is_one_line_and_exit_3() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _proxy_fails("--listen", f"127.0.0.1:{port}", "--upstream", "http://127.0.0.1:9")
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"onehop proxy: cannot listen on 127.0.0.1:{port}: Address already in use"]


def _connect(port: int, target: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = read_head(s)
        if head.startswith(b"HTTP/1.1 200"):
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            head += s.recv(65536)
        else:
            s.settimeout(2)
            try:
                while chunk := s.recv(65536):
                    head += chunk
            except OSError:
                pass
        return head


def test_connect_port_flag_opens_a_tunnel_and_403_names_the_rule_that_refused() -> None:
    def origin(sock: socket.socket, index: int) -> None:
        while read_head(sock):
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ntunnel")

    with RawUpstream(origin) as up:
        closed, opened = free_port(), free_port()
        with proxy_cli("--listen", f"127.0.0.1:{closed}", "--forward", "--allow",
                       "127.0.0.1:*"), proxy_cli(
                "--listen", f"127.0.0.1:{opened}", "--forward", "--allow", "127.0.0.1:*",
                "--connect-port", str(up.port)):
            assert wait_for(lambda: accepts(closed) and accepts(opened))
            refused = _connect(closed, f"127.0.0.1:{up.port}")
            tunnelled = _connect(opened, f"127.0.0.1:{up.port}")
            not_listed = _connect(opened, f"localhost:{up.port}")
    assert refused.startswith(b"HTTP/1.1 403 ")
    assert b"not among the CONNECT ports: forward.connect_ports, --connect-port" in refused
    assert tunnelled.startswith(b"HTTP/1.1 200 ") and tunnelled.endswith(b"tunnel")
    assert not_listed.startswith(b"HTTP/1.1 403 ")
    assert b"matches no allow-list pattern (forward.allow, --allow)" in not_listed


def test_connect_port_needs_forward() -> None:
    done = _proxy_fails("--upstream", "http://127.0.0.1:9", "--connect-port", "22")
    assert done.returncode == 2 and "--connect-port: only with --forward" in done.stderr
