"""The proxy checks against a naive byte-relaying proxy (must fail stripping) and nginx."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from onehop.probe import PROXY_CHECKS, Result, Verdict
from onehop.probe.cli import run_proxy
from tests.probe.conftest import HERE, free_port, nginx_cmd, nginx_conf, running

pytestmark = pytest.mark.timeout(60)

STRIP = [c.id for c in PROXY_CHECKS if c.id.startswith(("req-", "resp-"))]


def probe(port: int, origin_port: int) -> dict[str, Result]:
    results = run_proxy(f"127.0.0.1:{port}", origin_port, timeout=3.0, progress=False)
    assert [r.id for r in results] == [c.id for c in PROXY_CHECKS]
    return {r.id: r for r in results}


@pytest.fixture(scope="module")
def naive() -> Iterator[dict[str, Result]]:
    port, origin_port = free_port(), free_port()
    cmd = [sys.executable, str(HERE / "naive_proxy.py"), str(port), str(origin_port)]
    with running(cmd, port):
        yield probe(port, origin_port)


@pytest.fixture(scope="module")
def nginx_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Result]]:
    tmp = tmp_path_factory.mktemp("nginx-proxy")
    port, origin_port = free_port(), free_port()
    body = f"""
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
    with running(nginx_cmd(tmp, nginx_conf(tmp, port, body)), port):
        yield probe(port, origin_port)


def test_naive_proxy_fails_every_stripping_check_rfc9110_7_6_1(
    naive: dict[str, Result],
) -> None:
    assert len(STRIP) >= 10
    for check in STRIP:
        assert naive[check].verdict is Verdict.FAIL, (check, naive[check].evidence)
    assert naive["via-request"].verdict is Verdict.FAIL
    assert naive["dechunk-http10"].verdict is Verdict.FAIL
    assert "203.0.113.9" in naive["xff-hop-abuse"].evidence


def test_nginx_proxy_strips_its_fixed_hop_by_hop_list_rfc9110_7_6_1(
    nginx_proxy: dict[str, Result],
) -> None:
    for check in (
        "req-strip-keep-alive",
        "req-strip-te",
        "req-strip-upgrade",
        "req-connection-replaced",
        "resp-strip-keep-alive",
        "resp-connection-replaced",
    ):
        assert nginx_proxy[check].verdict is Verdict.PASS, (check, nginx_proxy[check].evidence)


def test_nginx_proxy_forwards_fields_named_in_connection_rfc9110_7_6_1(
    nginx_proxy: dict[str, Result],
) -> None:
    # Known nginx 1.22 gap, found by this probe: it removes only its own fixed list, not the
    # fields a Connection header names, nor Proxy-Connection; and it adds no Via.
    for check in (
        "req-strip-named",
        "req-strip-named-2nd-line",
        "req-strip-proxy-connection",
        "resp-strip-named",
        "resp-strip-proxy-connection",
        "via-request",
        "via-response",
    ):
        assert nginx_proxy[check].verdict is Verdict.FAIL, (check, nginx_proxy[check].evidence)


def test_nginx_proxy_reuses_and_retires_upstream_rfc9112_9_6(
    nginx_proxy: dict[str, Result],
) -> None:
    for check in (
        "upstream-reuse",
        "upstream-retire-close",
        "upstream-retire-http10",
        "client-persist",
        "client-close-honoured",
        "http10-client-closed",
        "dechunk-http10",
        "close-delimited-relayed",
        "pipeline-order",
    ):
        assert nginx_proxy[check].verdict is Verdict.PASS, (check, nginx_proxy[check].evidence)


def test_naive_proxy_forwards_the_received_host_and_lengths_rfc9112_3_2_2(
    naive: dict[str, Result],
) -> None:
    assert naive["absolute-form-authority-wins"].verdict is Verdict.FAIL
    assert "elsewhere.invalid" in naive["absolute-form-authority-wins"].evidence
    assert naive["duplicate-cl-normalised"].verdict is Verdict.FAIL


def test_nginx_proxy_refuses_duplicate_lengths_and_uses_the_target_host_rfc9110_8_6(
    nginx_proxy: dict[str, Result],
) -> None:
    assert nginx_proxy["duplicate-cl-normalised"].verdict is Verdict.PASS
    assert "rejected" in nginx_proxy["duplicate-cl-normalised"].evidence
    assert nginx_proxy["absolute-form-authority-wins"].verdict is Verdict.PASS
