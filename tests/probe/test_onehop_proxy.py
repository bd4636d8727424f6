"""The probe against onehop's own reverse proxy, run as a user runs it: every check must pass.

Issue 6 asks the probe to prove onehop's proxy right. Here both sides are separate
processes driven through their command lines (`onehop proxy` in front of the probe's
recording origin, `onehop probe proxy` judging from raw bytes), so the verdict and the
exit status are exactly what an operator would see.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from onehop.probe import PROXY_CHECKS
from tests.probe.conftest import free_port, running
from tests.probe.peers import onehop_proxy_cmd

pytestmark = pytest.mark.timeout(90)


def test_onehop_proxy_passes_every_intermediary_check_rfc9110_7_6_1(tmp_path: Path) -> None:
    port, origin_port = free_port(), free_port()
    report = tmp_path / "proxy.json"
    with running(onehop_proxy_cmd(port, origin_port), port):
        done = subprocess.run(
            [sys.executable, "-m", "onehop", "probe", "proxy", f"127.0.0.1:{port}",
             "--origin-port", str(origin_port), "--timeout", "3", "--json", str(report)],
            capture_output=True, text=True, timeout=80,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(report.read_text())
    results = data["results"] if isinstance(data, dict) else data
    verdicts = {r["id"]: r["verdict"] for r in results}
    assert set(verdicts) == {c.id for c in PROXY_CHECKS}
    failed = {k: v for k, v in verdicts.items() if v == "fail"}
    assert failed == {}
    # The stripping checks are the heart of RFC 9110 §7.6.1: each one must be a pass,
    # not merely "not failed".
    strip = [c.id for c in PROXY_CHECKS if c.id.startswith(("req-", "resp-"))]
    assert all(verdicts[c] == "pass" for c in strip), verdicts
    # Issue 12: one decimal Content-Length upstream; the absolute-form authority as Host.
    assert verdicts["duplicate-cl-normalised"] == "pass", verdicts
    assert verdicts["absolute-form-authority-wins"] == "pass", verdicts
