"""The probe's HTTP/2 checks (``onehop probe server --http2``) against real peers: onehop's
server and proxy pass every one, a deliberately careless server fails where it is
careless (the negative control), nginx and hypercorn are judged as they are."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from onehop.probe import Verdict
from onehop.probe.cli import main, run_http2
from tests.probe.conftest import NGINX, free_port, nginx_cmd, nginx_conf, running
from tests.probe.peers import (
    hypercorn_cmd,
    leaky_h2_cmd,
    nginx_h2_body,
    onehop_cmd,
    onehop_proxy_cmd,
    uvicorn_cmd,
)
from tests.server.apps import leaky_site
from tests.server.certs import make_certs
from tests.server.helpers import running as serving

pytestmark = pytest.mark.timeout(60)

needs_nginx = pytest.mark.skipif(shutil.which(NGINX) is None, reason="nginx not installed")


def _verdicts(url: str, paths: list[str] | None = None) -> dict[str, tuple[Verdict, str]]:
    return {r.id: (r.verdict, r.evidence) for r in run_http2(url, paths, 3.0, progress=False)}


def test_onehop_serve_with_a_leaky_app_passes_every_http2_check_rfc9113_8_2_2() -> None:
    with serving(leaky_site) as server:
        seen = _verdicts(f"http://127.0.0.1:{server.port}/", ["/r/1.js"])
    assert {k: v for k, v in seen.items() if v[0] is not Verdict.PASS} == {}
    assert "stream reset with PROTOCOL_ERROR" in seen["h2-rejects-connection-in-request"][1]


def test_onehop_proxy_passes_every_http2_check() -> None:
    origin, proxy = free_port(), free_port()
    with running(uvicorn_cmd(origin), origin), running(onehop_proxy_cmd(proxy, origin), proxy):
        seen = _verdicts(f"http://127.0.0.1:{proxy}/")
    assert {k: v for k, v in seen.items() if v[0] is not Verdict.PASS} == {}


def test_leaky_server_fails_the_field_and_malformed_request_checks() -> None:
    port = free_port()
    with running(leaky_h2_cmd(port), port):
        seen = _verdicts(f"http://127.0.0.1:{port}/")
    verdict, evidence = seen["h2-no-connection-specific-fields"]
    assert verdict is Verdict.FAIL
    assert "connection: keep-alive" in evidence and "transfer-encoding: chunked" in evidence
    assert "Safari refuses this response (RFC 9113 §8.2.2)" in evidence
    for check in ("h2-rejects-connection-in-request", "h2-rejects-transfer-encoding-in-request",
                  "h2-rejects-te-other-than-trailers"):
        assert seen[check][0] is Verdict.FAIL, check
    assert seen["h2-speaks"][0] is Verdict.PASS


def test_http1_only_server_fails_h2_speaks() -> None:
    port = free_port()
    with running([*onehop_cmd(port), "--http", "h11"], port):
        seen = _verdicts(f"http://127.0.0.1:{port}/")
    assert seen["h2-speaks"][0] is Verdict.FAIL


@needs_nginx
def test_nginx_http2_is_judged(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hi\n")
    port = free_port()
    conf = nginx_conf(tmp_path, port, nginx_h2_body(port, tmp_path / "www"))
    with running(nginx_cmd(tmp_path, conf), port):
        seen = _verdicts(f"http://127.0.0.1:{port}/index.html")
    assert seen["h2-speaks"][0] is Verdict.PASS
    assert seen["h2-no-connection-specific-fields"][0] is Verdict.PASS


def test_cli_probes_https_by_alpn_and_exits_0(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    certs = make_certs(tmp_path)
    with serving(leaky_site, ssl_certfile=certs.cert, ssl_keyfile=certs.key) as server:
        status = main(["probe", "server", "--http2", f"https://localhost:{server.port}/",
                       "--path", "/r/2.js"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "ALPN h2" in out and "8 pass, 0 fail" in out


def test_cli_http2_cannot_connect_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "server", "--http2", f"http://127.0.0.1:{free_port()}/"]) == 2
    assert "cannot connect" in capsys.readouterr().err


def test_matrix_has_http2_columns(tmp_path: Path) -> None:
    leaky, hyper = free_port(), free_port()
    config = tmp_path / "targets.toml"
    config.write_text(f"""
timeout = 3.0
[[target]]
label = "leaky h2"
kind = "http2"
url = "http://127.0.0.1:{leaky}/"

[[target]]
label = "hypercorn"
kind = "http2"
url = "http://127.0.0.1:{hyper}/"
""")
    out = tmp_path / "status.md"
    with running(leaky_h2_cmd(leaky), leaky), running(hypercorn_cmd(hyper), hyper):
        status = main(["probe", "matrix", str(config), "--markdown", str(out)])
    text = out.read_text()
    assert status == 1
    row = next(line for line in text.splitlines()
               if line.startswith("| `http2: h2-no-connection-specific-fields`"))
    assert row.endswith("| **FAIL** | pass |")
    assert "**leaky h2** (http2)" in text
