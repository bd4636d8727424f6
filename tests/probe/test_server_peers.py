"""The origin-server checks against real peers: http.server (1.1 and 1.0), uvicorn, nginx,
Node.js's http server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from onehop.probe import SERVER_CHECKS, Result, Verdict
from onehop.probe.cli import run_server
from tests.probe.conftest import (
    free_port,
    http_server_cmd,
    needs_nginx,
    needs_node,
    nginx_cmd,
    nginx_conf,
    nginx_origin_body,
    node_cmd,
    running,
    uvicorn_cmd,
)

pytestmark = pytest.mark.timeout(60)

PASS, FAIL, INFO = Verdict.PASS, Verdict.FAIL, Verdict.INFO


def probe(port: int, path: str = "/index.html", no_content: str | None = None) -> dict[str, Result]:
    url = f"http://127.0.0.1:{port}{path}"
    results = run_server(url, 3.0, 3.0, progress=False, no_content_path=no_content)
    assert [r.id for r in results] == [c.id for c in SERVER_CHECKS]
    return {r.id: r for r in results}


def verdicts(results: dict[str, Result]) -> dict[str, Verdict]:
    return {k: r.verdict for k, r in results.items()}


@pytest.fixture(scope="module")
def http_server_11(www: Path) -> Iterator[dict[str, Result]]:
    port = free_port()
    with running(http_server_cmd(port, www, "HTTP/1.1"), port):
        yield probe(port)


@pytest.fixture(scope="module")
def http_server_10(www: Path) -> Iterator[dict[str, Result]]:
    port = free_port()
    with running(http_server_cmd(port, www, "HTTP/1.0"), port):
        yield probe(port)


@pytest.fixture(scope="module")
def uvicorn() -> Iterator[dict[str, Result]]:
    port = free_port()
    with running(uvicorn_cmd(port), port):
        yield probe(port, "/", "/204")


@pytest.fixture(scope="module")
def nginx(www: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Result]]:
    tmp = tmp_path_factory.mktemp("nginx-origin")
    port = free_port()
    conf = nginx_conf(tmp, port, nginx_origin_body(port, www))
    with running(nginx_cmd(tmp, conf), port):
        yield probe(port, no_content="/204")


@pytest.fixture(scope="module")
def node() -> Iterator[dict[str, Result]]:
    port = free_port()
    with running(node_cmd(port, 1000), port):
        yield probe(port, "/", "/204")


def test_http_server_11_persists_and_honours_exact_close_rfc9112_9_3(
    http_server_11: dict[str, Result],
) -> None:
    v = verdicts(http_server_11)
    assert v["persist-default"] is PASS
    assert v["close-honoured"] is PASS
    assert v["close-uppercase"] is PASS
    assert v["pipeline-order"] is PASS
    assert v["head-no-body"] is PASS


def test_http_server_11_misses_close_inside_a_list_rfc9110_7_6_1(
    http_server_11: dict[str, Result],
) -> None:
    # http.server compares the whole Connection value with "close": "foo, close" slips by.
    v = verdicts(http_server_11)
    assert v["close-in-list"] is FAIL
    assert v["close-second-line"] is FAIL
    assert v["missing-host-400"] is FAIL


def test_http_server_10_closes_after_each_response_rfc9112_9_3(
    http_server_10: dict[str, Result],
) -> None:
    v = verdicts(http_server_10)
    assert v["http10-closes"] is PASS
    assert v["close-in-list"] is PASS
    assert v["persist-default"] is INFO
    assert v["http10-keepalive"] is INFO
    assert "closed by server after 0." in http_server_10["idle-timeout"].evidence


def test_uvicorn_honours_close_everywhere_rfc9112_9_6(uvicorn: dict[str, Result]) -> None:
    v = verdicts(uvicorn)
    for check in (
        "persist-default",
        "close-honoured",
        "close-echoed",
        "close-in-list",
        "close-second-line",
        "close-beats-keepalive",
        "pipeline-close",
        "cl-te-closes",
        "bad-cl-400-close",
        "obs-fold-rejected",
        "no-close-on-1xx",
    ):
        assert v[check] is PASS, (check, uvicorn[check].evidence)
    assert "closed by server after 1." in uvicorn["idle-timeout"].evidence


@needs_nginx
def test_nginx_honours_close_and_rejects_malformed_rfc9112_9_6(nginx: dict[str, Result]) -> None:
    v = verdicts(nginx)
    for check in (
        "persist-default",
        "close-honoured",
        "close-echoed",
        "close-in-list",
        "close-second-line",
        "close-beats-keepalive",
        "http10-closes",
        "http10-keepalive",
        "pipeline-order",
        "pipeline-close",
        "cl-te-closes",
        "bad-cl-400-close",
        "missing-host-400",
        "double-host-400",
        "head-no-body",
        "lingering-close",
        "204-no-body",
        "304-no-body",
        "garbage-field-400-close",
        "space-before-colon-400",
        "conflicting-cl-400-close",
        "http10-te-closes",
        "keepalive-field-without-option",
        "keepalive-timeout-vs-idle",
    ):
        assert v[check] is PASS, (check, nginx[check].evidence)
    assert FAIL not in v.values(), {k: r.evidence for k, r in nginx.items() if r.verdict is FAIL}
    assert "closed by server after 2." in nginx["idle-timeout"].evidence


def test_http_server_10_ignores_keep_alive_field_without_option_rfc9110_7_6_1(
    http_server_10: dict[str, Result],
) -> None:
    v = verdicts(http_server_10)
    assert v["keepalive-field-without-option"] is PASS
    assert v["304-no-body"] is PASS  # SimpleHTTPRequestHandler answers If-Modified-Since
    assert v["204-no-body"] is INFO  # no path answering 204 given


def test_uvicorn_204_and_malformed_requests_rfc9112_6_3(uvicorn: dict[str, Result]) -> None:
    v = verdicts(uvicorn)
    for check in ("204-no-body", "conflicting-cl-400-close", "garbage-field-400-close"):
        assert v[check] is PASS, (check, uvicorn[check].evidence)


@needs_node
def test_node_persists_and_honours_close_rfc9112_9_3(node: dict[str, Result]) -> None:
    v = verdicts(node)
    for check in (
        "persist-default",
        "close-honoured",
        "close-echoed",
        "close-uppercase",
        "close-in-list",
        "pipeline-order",
        "head-no-body",
        "204-no-body",
        "missing-host-400",
        "bad-cl-400-close",
        "conflicting-cl-400-close",
    ):
        assert v[check] is PASS, (check, node[check].evidence)
    # Node 20 (llhttp) rejects a buffer holding a request after "Connection: close" with one
    # 400 for the lot, leaving the first pipelined request unanswered; it also takes two Hosts.
    assert v["pipeline-close"] is FAIL
    assert v["double-host-400"] is FAIL
    # keepAliveTimeout = 1000 ms; Node's timer closes the idle socket between 1 and 2 s.
    after = float(node["idle-timeout"].evidence.rsplit(" ", 1)[-1].rstrip("s"))
    assert 0.9 < after < 2.5


@needs_nginx
@needs_node
def test_llhttp_httptools_and_nginx_answer_a_bad_request_line_at_once_rfc9112_3(
    uvicorn: dict[str, Result], nginx: dict[str, Result], node: dict[str, Result]
) -> None:
    # The head never ends; each answers 400 as soon as the request-line's CRLF is in.
    for name, results in (("uvicorn", uvicorn), ("nginx", nginx), ("node", node)):
        check = results["bad-request-line-early-400"]
        assert check.verdict is PASS, (name, check.evidence)
