"""The proxy's request and response hooks, and the Upgrade exchange that goes through the
same pool and hooks as any request (Go's ``Rewrite``/``ModifyResponse``)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Iterator

import pytest

from onehop.core import Request, Response
from onehop.probe.origin import PREFIX, RecordingOrigin
from onehop.probe.wire import request
from onehop.proxy import ProxyConfig
from tests.proxy.helpers import ProxyThread

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("pool_state")]

_n = itertools.count()


@pytest.fixture(scope="module")
def origin() -> Iterator[RecordingOrigin]:
    with RecordingOrigin(0) as o:
        yield o


def _cfg(origin: RecordingOrigin) -> ProxyConfig:
    return ProxyConfig(upstreams={"default": [f"http://127.0.0.1:{origin.port}"]})


def _get(p: ProxyThread, origin: RecordingOrigin, query: str = "",
         fields: list[tuple[str, str]] | None = None) -> tuple[int, str, bytes]:
    token = f"hook{next(_n)}"
    target = f"{PREFIX}{token}" + (f"?{query}" if query else "")
    with p.wire() as w:
        w.send(request("GET", target, f"127.0.0.1:{origin.port}", fields))
        resp = w.read_response()
    return resp.status, token, resp.body


def _with_field(outbound: Request, name: bytes, value: bytes) -> Request:
    return Request(outbound.method, outbound.target, [*outbound.headers.raw(), (name, value)],
                   outbound.connection)


def test_request_hook_sees_both_messages_and_its_replacement_goes_up(
    origin: RecordingOrigin,
) -> None:
    seen: list[tuple[Request, Request]] = []

    def hook(inbound: Request, outbound: Request) -> Request:
        seen.append((inbound, outbound))
        return _with_field(outbound, b"X-Hooked", b"yes")

    with ProxyThread(_cfg(origin), request_hook=hook) as p:
        status, token, _ = _get(p, origin)
    assert status == 200
    inbound, outbound = seen[0]
    assert inbound.headers.get(b"via") is None  # the received request, as it came
    assert outbound.headers.get(b"via") == b"1.1 onehop"  # after stripping and adding ours
    assert origin.wait_for(token)[0].head.get("X-Hooked") == "yes"


def test_async_request_hook_is_awaited(origin: RecordingOrigin) -> None:
    async def hook(inbound: Request, outbound: Request) -> Request:
        await asyncio.sleep(0.05)
        return _with_field(outbound, b"X-Async", b"1")

    with ProxyThread(_cfg(origin), request_hook=hook) as p:
        status, token, _ = _get(p, origin)
    assert status == 200 and origin.wait_for(token)[0].head.get("X-Async") == "1"


def test_hook_adding_a_hop_by_hop_field_is_a_local_500_not_the_upstreams_fault_rfc9110_7_6_1(
    origin: RecordingOrigin, caplog: pytest.LogCaptureFixture,
) -> None:
    # The core refuses Keep-Alive among end-to-end fields. That is our mistake: a 500 with
    # a log line; the pooled connection is not aborted, nothing is retried, and the
    # upstream is not marked down.
    def hook(inbound: Request, outbound: Request) -> Request | None:
        if inbound.target.endswith(b"bad"):
            return _with_field(outbound, b"Keep-Alive", b"timeout=5")
        return None

    with ProxyThread(_cfg(origin), request_hook=hook) as p, \
            caplog.at_level(logging.ERROR, "onehop.proxy"):
        assert _get(p, origin)[0] == 200
        opened = p.proxy.pool.connections_opened
        status, token, body = _get(p, origin, "bad")
        assert status == 500 and b"hook" in body
        assert not origin.wait_for(token, timeout=0.3)  # nothing went upstream
        assert _get(p, origin)[0] == 200
        assert p.proxy.pool.connections_opened == opened  # the connection was kept
        upstream = p.proxy.groups["default"].members[0]
        assert upstream.failures == 0
    assert "cannot be sent" in caplog.text


def test_failing_hook_answers_500(origin: RecordingOrigin) -> None:
    def hook(inbound: Request, outbound: Request) -> Request:
        raise RuntimeError("boom")

    async def ahook(inbound: Request, outbound: Request) -> Request:
        raise RuntimeError("boom")

    for h in (hook, ahook):
        with ProxyThread(_cfg(origin), request_hook=h) as p:
            assert _get(p, origin)[0] == 500


def test_response_hook_replaces_the_answer(origin: RecordingOrigin) -> None:
    def hook(upstream: Response, outbound: Response) -> Response:
        return Response(outbound.status_code, [*outbound.headers.raw(), (b"X-Seen", b"1")],
                        outbound.reason, outbound.connection)

    with ProxyThread(_cfg(origin), response_hook=hook) as p, p.wire() as w:
        w.send(request("GET", f"{PREFIX}r{next(_n)}", "o"))
        resp = w.read_response()
    assert resp.status == 200 and resp.get("X-Seen") == "1"


def test_response_hook_runs_on_the_non_101_answer_to_an_upgrade_offer_rfc9110_7_8(
    origin: RecordingOrigin,
) -> None:
    # The upstream ignores the offer and answers 200: that answer is relayed like any
    # other, through the response hook.
    statuses: list[int] = []

    def hook(upstream: Response, outbound: Response) -> None:
        statuses.append(upstream.status_code)

    with ProxyThread(_cfg(origin), response_hook=hook) as p, p.wire() as w:
        w.send(request("GET", f"{PREFIX}u{next(_n)}", "o",
                       [("Connection", "Upgrade"), ("Upgrade", "x-probe-echo")]))
        resp = w.read_response()
    assert resp.status == 200 and statuses == [200]


def test_upgrade_counts_against_the_pool_limit_rfc9110_7_8(origin: RecordingOrigin) -> None:
    # One connection per upstream: while a tunnel holds it, another request waits for
    # the pool, and gets 504 when the wait outlasts the connect timeout.
    cfg = _cfg(origin)
    cfg.limits.max_per_upstream = 1
    cfg.timeouts.connect = 0.5
    with ProxyThread(cfg, warm=False) as p, p.wire() as tunnel:
        tunnel.send(request("GET", f"{PREFIX}t{next(_n)}?upgrade=1", "o",
                            [("Connection", "Upgrade"), ("Upgrade", "x-probe-echo")]))
        assert tunnel.read_response().status == 101
        tunnel.send(b"ping")
        t0 = time.monotonic()
        status, _, _ = _get(p, origin)
        assert status == 504 and time.monotonic() - t0 < 3
        assert p.proxy.pool.count(("http", "127.0.0.1", origin.port)) == 1


def test_upgrade_to_a_refusing_upstream_marks_it_down_like_any_request() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # (closed again: nothing listens there)
    with ProxyThread(upstreams=[f"http://127.0.0.1:{port}"]) as p, p.wire() as w:
        w.send(request("GET", "/", "o", [("Connection", "Upgrade"), ("Upgrade", "x")]))
        assert w.read_response().status == 502
        assert p.proxy.groups["default"].members[0].failures == 1
