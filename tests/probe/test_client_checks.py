"""``onehop probe client``: the scripted server against curl and Python's urllib/http.client."""

from __future__ import annotations

import shutil
import sys

import pytest

from onehop.probe import CLIENT_CHECKS, Result, Verdict
from onehop.probe.cli import main, run_client

pytestmark = pytest.mark.timeout(60)
needs_curl = pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")

PASS, FAIL, INFO = Verdict.PASS, Verdict.FAIL, Verdict.INFO

URLLIB = (
    "import sys, urllib.request\n"
    "for u in sys.argv[1:]:\n"
    "    urllib.request.urlopen(u, timeout=5).read()\n"
)
# http.client keeps one connection and ignores Keep-Alive: timeout, so it must fail there.
HTTP_CLIENT_PAUSE = (
    "import sys, time, http.client, urllib.parse\n"
    "u = urllib.parse.urlsplit(sys.argv[1])\n"
    "c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)\n"
    "for p in ('/a', '/b'):\n"
    "    c.request('GET', u.path + p); c.getresponse().read(); time.sleep(1.3)\n"
)


def verdicts(results: list[Result]) -> dict[str, Verdict]:
    assert [r.id for r in results] == [c.id for c in CLIENT_CHECKS]
    return {r.id: r.verdict for r in results}


def test_at_least_four_client_checks_each_citing_a_section() -> None:
    assert len(CLIENT_CHECKS) >= 4
    assert all(c.section.startswith("RFC ") and c.sentence for c in CLIENT_CHECKS)


@needs_curl
def test_curl_reuses_stops_after_close_and_retries_get_rfc9112_9_3() -> None:
    v = verdicts(run_client(["curl", "-s", "{url}/a", "{url}/b"], progress=False))
    assert v["client-reuse"] is PASS
    assert v["client-stop-after-close"] is PASS
    assert v["client-stop-after-http10"] is PASS
    assert v["client-keepalive-timeout"] is INFO  # no pause between the two requests
    assert v["client-retry-idempotent-only"] is PASS


@needs_curl
def test_curl_retries_a_post_on_a_dead_reused_connection_rfc9112_9_3_2() -> None:
    # Found by this probe: curl resends a POST whose reused connection closed unanswered.
    cmd = ["curl", "-s", "{url}/a", "--next", "-X", "POST", "-d", "x", "{url}/b"]
    results = run_client(cmd, only=["client-retry-idempotent-only"], progress=False)
    assert results[0].verdict is FAIL, results[0].evidence
    assert "non-idempotent POST b retried" in results[0].evidence


def test_urllib_never_reuses_and_says_close_rfc9112_9_3() -> None:
    v = verdicts(run_client([sys.executable, "-c", URLLIB, "{url}/a", "{url}/b"], progress=False))
    assert v["client-reuse"] is INFO  # urllib sends Connection: close on every request
    assert v["client-stop-after-close"] is PASS
    assert v["client-retry-idempotent-only"] is INFO  # nothing reused, nothing to retry


def test_http_client_reuses_past_keep_alive_timeout_rfc7230_a_1_2() -> None:
    cmd = [sys.executable, "-c", HTTP_CLIENT_PAUSE, "{url}"]
    results = run_client(cmd, only=["client-keepalive-timeout"], progress=False)
    assert results[0].verdict is FAIL, results[0].evidence


def test_client_cli_needs_url_placeholder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "client", "--", "true"]) == 2
    assert "{url}" in capsys.readouterr().err
