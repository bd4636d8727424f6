"""``onehop probe`` argv handling, JSON/Markdown output and exit status."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from onehop.probe import PROXY_CHECKS, SERVER_CHECKS, Check, server_connection, server_framing
from onehop.probe.cli import main, register
from tests.probe.conftest import free_port, http_server_cmd, running

pytestmark = pytest.mark.timeout(30)


def test_register_adds_probe_server_and_proxy() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["probe", "proxy", "127.0.0.1:1", "--origin-port", "2"])
    assert (args.probe_kind, args.address, args.origin_port) == ("proxy", "127.0.0.1:1", 2)
    args = parser.parse_args(["probe", "server", "http://x/", "--json", "o.json", "--markdown"])
    assert args.url == "http://x/" and args.markdown and args.json == Path("o.json")


def test_enough_checks_each_citing_a_section() -> None:
    assert len(SERVER_CHECKS) >= 20 and len(PROXY_CHECKS) >= 15
    ids = [c.id for c in SERVER_CHECKS] + [c.id for c in PROXY_CHECKS]
    for check in [*SERVER_CHECKS, *PROXY_CHECKS]:
        assert check.section.startswith("RFC ") and check.sentence
    assert len(set(c.id for c in SERVER_CHECKS)) == len(SERVER_CHECKS)
    assert len(ids) > 35


def test_server_checks_lists_every_server_check() -> None:
    """``server_checks`` lists the checks by hand (their order interleaves the modules):
    one defined but not listed would never run."""
    defined = [v for module in (server_connection, server_framing)
               for v in vars(module).values() if isinstance(v, Check)]
    assert sorted(c.id for c in defined) == sorted(c.id for c in SERVER_CHECKS)


def test_json_markdown_and_exit_status(
    www: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    out = tmp_path / "r.json"
    with running(http_server_cmd(port, www, "HTTP/1.1"), port):
        url = f"http://127.0.0.1:{port}/index.html"
        only = ["--only", "close-honoured", "--only", "close-in-list"]
        status = main(["probe", "server", url, "--json", str(out), "--markdown", *only])
    assert status == 1  # close-in-list fails on http.server
    doc = json.loads(out.read_text())
    verdicts = {r["id"]: r["verdict"] for r in doc["results"]}
    assert verdicts == {"close-honoured": "pass", "close-in-list": "fail"}
    captured = capsys.readouterr()
    assert "| `close-in-list` | RFC 9110 §7.6.1 | FAIL |" in captured.out
    assert "[1/2] close-honoured ... pass" in captured.err


def test_server_that_is_down_is_one_line_and_exit_2_not_a_fail_per_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    assert main(["probe", "server", url, "--timeout", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"onehop probe: cannot connect to {url}: connection refused\n"
    assert captured.out == ""  # no table of FAIL lines


def test_proxy_that_is_down_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    assert main(["probe", "proxy", address, "--origin-port", str(free_port())]) == 2
    assert capsys.readouterr().err == (
        f"onehop probe: cannot connect to {address}: connection refused\n")


def test_server_that_is_down_from_the_onehop_command() -> None:
    import subprocess
    import sys

    url = f"http://127.0.0.1:{free_port()}/"
    proc = subprocess.run([sys.executable, "-m", "onehop", "probe", "server", url],
                          capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"onehop probe: cannot connect to {url}: connection refused\n"


def test_unknown_host_says_so() -> None:
    from onehop.probe.cli import reachable

    assert (reachable("no-such-host.invalid", 80, 2.0) or "").startswith("unknown host")
