"""The probe against onehop's own origin server: every origin-server check must pass.

This is how onehop proves its server right (issue 6): the probe judges from raw bytes,
so a bug in the core cannot hide itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from onehop.probe import Result, Verdict
from tests.probe.conftest import free_port, running
from tests.probe.peers import onehop_cmd
from tests.probe.test_server_peers import probe

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def onehop_server() -> Iterator[dict[str, Result]]:
    port = free_port()
    with running(onehop_cmd(port), port):
        yield probe(port, "/", "/204")


def test_onehop_server_passes_every_origin_check(onehop_server: dict[str, Result]) -> None:
    failed = {k: r.evidence for k, r in onehop_server.items() if r.verdict is Verdict.FAIL}
    assert failed == {}


def test_onehop_server_answers_a_bad_request_line_before_the_head_ends_rfc9112_3(
    onehop_server: dict[str, Result],
) -> None:
    check = onehop_server["bad-request-line-early-400"]
    assert check.verdict is Verdict.PASS, check.evidence
