"""Hop-by-hop stripping both ways (RFC 9110 §7.6.1), Via (§7.6.3), forwarding fields and the
nomination policy for protected fields, through a real proxy on loopback sockets."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from onehop.probe.origin import PREFIX, RecordingOrigin
from onehop.probe.wire import request
from onehop.proxy import ForwardedStyle, Nomination, ProxyConfig
from tests.proxy.helpers import ProxyThread

pytestmark = pytest.mark.usefixtures("pool_state")

_n = itertools.count()


@pytest.fixture(scope="module")
def origin() -> Iterator[RecordingOrigin]:
    with RecordingOrigin(0) as o:
        yield o


def _cfg(origin: RecordingOrigin, **nomination: Nomination) -> ProxyConfig:
    cfg = ProxyConfig(upstreams={"default": [f"http://127.0.0.1:{origin.port}"]})
    for name, rule in nomination.items():
        cfg.headers.nomination[name.replace("_", "-").encode()] = rule
    return cfg


@pytest.fixture(scope="module")
def proxy(origin: RecordingOrigin) -> Iterator[ProxyThread]:
    with ProxyThread(_cfg(origin)) as p:
        yield p


def _send(p: ProxyThread, origin: RecordingOrigin, fields: list[tuple[str, str]],
          body: bytes = b"", query: str = "", method: str = "GET",
          raw: bytes | None = None) -> tuple[int, list[tuple[str, str]] | None, bytes]:
    token = f"hop{next(_n)}"
    target = f"{PREFIX}{token}" + (f"?{query}" if query else "")
    with p.wire() as w:
        w.send(raw.replace(b"{T}", target.encode()) if raw else
               request(method, target, f"127.0.0.1:{origin.port}", fields, body=body))
        resp = w.read_response(method)
    seen = origin.wait_for(token, timeout=0.5 if resp.status == 200 else 0.2)
    fields_seen = seen[0].head.fields if seen else None
    resp_fields = [(n.lower(), v) for n, v in resp.head.fields]
    return resp.status, fields_seen, repr(resp_fields).encode() + b"|" + resp.body


def _names(fields: list[tuple[str, str]] | None) -> set[str]:
    assert fields is not None, "request never reached the origin"
    return {n.lower() for n, _ in fields}


@pytest.mark.parametrize("name,value", [
    ("Keep-Alive", "timeout=99"), ("Proxy-Connection", "keep-alive"), ("TE", "gzip"),
    ("Upgrade", "x-test/1"), ("Trailer", "X-T"), ("Proxy-Authorization", "Basic eDp5"),
])
def test_fixed_hop_by_hop_request_field_removed_rfc9110_7_6_1(
        proxy: ProxyThread, origin: RecordingOrigin, name: str, value: str) -> None:
    status, seen, _ = _send(proxy, origin, [(name, value), ("X-Kept", "1")])
    assert status == 200
    names = _names(seen)
    assert name.lower() not in names and "x-kept" in names


@pytest.mark.parametrize("fields", [
    [("Connection", "X-A"), ("X-A", "1"), ("x-b", "2")],
    [("Connection", "keep-alive"), ("Connection", "X-A, X-B"), ("X-A", "1"), ("X-B", "2")],
    [("connection", " ,  x-a ,\t X-b ,"), ("X-A", "1"), ("X-a", "again"), ("X-B", "2")],
    [("CONNECTION", "X-A"), ("CoNnEcTiOn", "x-B"), ("x-a", "1"), ("X-B", "2")],
], ids=["one-line", "multiple-lines", "ows-and-empty-members", "any-case"])
def test_fields_named_by_connection_removed_rfc9110_7_6_1(
        proxy: ProxyThread, origin: RecordingOrigin, fields: list[tuple[str, str]]) -> None:
    status, seen, _ = _send(proxy, origin, fields)
    assert status == 200
    names = _names(seen)
    assert "x-a" not in names
    if any(v.lower().find("x-b") >= 0 for n, v in fields if n.lower() == "connection"):
        assert "x-b" not in names
    conn = [v for n, v in seen or [] if n.lower() == "connection"]
    assert not any("x-a" in v.lower() for v in conn)


@pytest.mark.parametrize("query,forbidden", [
    ("ka=timeout%3D9", "keep-alive"),
    ("hdr=Proxy-Connection:keep-alive", "proxy-connection"),
    ("hdr=Upgrade:x-test/1", "upgrade"),
    ("hdr=Proxy-Authenticate:Basic", "proxy-authenticate"),
    ("hdr=Trailer:X-T", "trailer"),
    ("conn=X-Resp&hdr=X-Resp:1", "x-resp"),
    ("conn=x-resp%2C%20X-Other&hdr=X-RESP:1&hdr=x-other:2", "x-other"),
], ids=["keep-alive", "proxy-connection", "upgrade", "proxy-authenticate", "trailer",
        "named", "named-any-case"])
def test_response_hop_by_hop_fields_removed_rfc9110_7_6_1(
        proxy: ProxyThread, origin: RecordingOrigin, query: str, forbidden: str) -> None:
    status, _, resp = _send(proxy, origin, [], query=query)
    assert status == 200
    head = resp.split(b"|", 1)[0].decode()
    assert f"('{forbidden}'," not in head
    assert "x-resp" not in head.replace("('connection'", "")


def test_via_added_both_ways_rfc9110_7_6_3(proxy: ProxyThread, origin: RecordingOrigin) -> None:
    status, seen, resp = _send(proxy, origin, [("Via", "1.0 earlier")])
    assert status == 200
    vias = [v for n, v in seen or [] if n.lower() == "via"]
    assert vias == ["1.0 earlier", "1.1 onehop"]
    assert b"('via', '1.1 onehop')" in resp


def test_client_forwarding_fields_replaced_by_proxys_own(
        proxy: ProxyThread, origin: RecordingOrigin) -> None:
    status, seen, _ = _send(proxy, origin, [("X-Forwarded-For", "203.0.113.9"),
                                            ("Forwarded", "for=1.2.3.4")])
    assert status == 200
    got = {n.lower(): v for n, v in seen or []}
    assert got["x-forwarded-for"] == "127.0.0.1"
    assert got["x-forwarded-proto"] == "http"
    assert "forwarded" not in got


def test_forwarded_rfc7239_style(origin: RecordingOrigin) -> None:
    cfg = _cfg(origin)
    cfg.headers.forwarded = ForwardedStyle.FORWARDED
    with ProxyThread(cfg) as p:
        status, seen, _ = _send(p, origin, [])
    got = {n.lower(): v for n, v in seen or []}
    assert status == 200 and got["forwarded"].startswith("for=127.0.0.1;proto=http;host=")
    assert "x-forwarded-for" not in got


PROTECTED = ["x-forwarded-for", "forwarded", "host", "content-length", "transfer-encoding",
             "authorization", "cookie"]


def _abuse(name: str, port: int) -> tuple[bytes, str]:
    """A request that nominates *name* in Connection and carries the field."""
    head = f"POST {{T}} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: {name}\r\n"
    body = "hello"
    if name == "content-length":
        return (head + f"Content-Length: {len(body)}\r\n\r\n{body}").encode(), body
    if name == "transfer-encoding":
        return (head + f"Transfer-Encoding: chunked\r\n\r\n5\r\n{body}\r\n0\r\n\r\n").encode(), body
    if name == "host":
        return (head + f"Content-Length: {len(body)}\r\n\r\n{body}").encode(), body
    value = {"forwarded": "for=6.6.6.6", "x-forwarded-for": "6.6.6.6"}.get(name, "secret=1")
    return (head + f"{name}: {value}\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode(), body


@pytest.mark.parametrize("name", PROTECTED)
@pytest.mark.parametrize("rule", list(Nomination))
def test_nomination_policy_per_protected_field(
        origin: RecordingOrigin, name: str, rule: Nomination, caplog: pytest.LogCaptureFixture
) -> None:
    raw, _ = _abuse(name, origin.port)
    with ProxyThread(_cfg(origin, **{name: rule})) as p:
        status, seen, _ = _send(p, origin, [], raw=raw, method="POST")
    assert any(name in r.getMessage() and rule.value in r.getMessage() for r in caplog.records)
    if rule is Nomination.REJECT:
        assert status == 400 and seen is None
        return
    assert status == 200 and seen is not None
    got = [(n.lower(), v) for n, v in seen]
    names = {n for n, _ in got}
    if name in ("x-forwarded-for", "forwarded"):
        # The proxy's own X-Forwarded-For is added after stripping: never the client's.
        assert dict(got)["x-forwarded-for"] == "127.0.0.1"
        assert "6.6.6.6" not in repr(got)
    elif name == "host":
        assert "host" in names  # ignore: the client's; strip: the upstream's authority
    elif name in ("authorization", "cookie"):
        assert (name in names) == (rule is Nomination.IGNORE)
    else:  # framing fields: the proxy frames the body itself either way
        assert ("content-length" in names) or ("transfer-encoding" in names)
    assert "connection" not in names or name not in dict(got).get("connection", "").lower()
