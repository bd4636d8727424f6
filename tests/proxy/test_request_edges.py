"""What the proxy forwards at the edges of the request syntax: duplicate or list-valued
Content-Length (RFC 9110 §8.6, RFC 9112 §6.3), field names with underscores, and the
authority of an absolute-form target (RFC 9112 §3.2.2)."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from typing import Self

import pytest

from onehop.probe.origin import PREFIX, RecordingOrigin
from onehop.probe.wire import Head, parse_head
from onehop.proxy import ForwardPolicy, ProxyConfig, Underscores
from tests.probe.conftest import needs_node
from tests.probe.peers import node_cmd, running
from tests.proxy.helpers import ProxyThread, RawUpstream, free_port

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("pool_state")]

_n = itertools.count()


class _Recorder:
    """A raw upstream whose ``_handle`` records what requests brought."""

    def __init__(self) -> None:
        self.upstream = RawUpstream(self._handle)

    def _handle(self, sock: socket.socket, index: int) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.upstream.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.upstream.__exit__(*exc)


class BodyRecorder(_Recorder):
    """Records each request head and its Content-Length body."""

    def __init__(self) -> None:
        self.seen: list[tuple[Head, bytes]] = []
        super().__init__()

    def _handle(self, sock: socket.socket, index: int) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            raw, _, buf = buf.partition(b"\r\n\r\n")
            head = parse_head(raw + b"\r\n\r\n")
            # Deliberately strict, as llhttp and h11 are: one plain decimal line or nothing.
            lengths = [v for n, v in head.fields if n.lower() == "content-length"]
            if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                return
            size = int(lengths[0]) if lengths else 0
            while len(buf) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            body, buf = buf[:size], buf[size:]
            self.seen.append((head, body))
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@pytest.fixture(scope="module")
def recorder() -> Iterator[BodyRecorder]:
    with BodyRecorder() as r:
        yield r


def _send_raw(p: ProxyThread, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith((b"ok", b"\n")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


@pytest.mark.parametrize("lengths", [
    [b"5,5"], [b"5, 5"], [b"5", b"5"], [b"5", b"05"], [b"05"], [b"00005"], [b"5 ,\t5"],
    [b"5, 5", b"5"],
], ids=["list", "list-space", "two-lines", "line-and-zero-padded", "zero-padded",
        "many-zeros", "list-tabs", "list-and-line"])
def test_duplicate_content_length_goes_up_as_one_decimal_line_rfc9110_8_6(
    recorder: BodyRecorder, lengths: list[bytes]
) -> None:
    # "a recipient MAY [...] accept a Content-Length list of identical values"; what goes on
    # is the proxy's own framing: exactly one line, the decimal length (issue 12).
    cl = b"".join(b"Content-Length: " + v + b"\r\n" for v in lengths)
    raw = b"POST /m2 HTTP/1.1\r\nHost: h\r\n" + cl + b"\r\nhello"
    with ProxyThread(upstreams=[f"http://127.0.0.1:{recorder.upstream.port}"]) as p:
        before = len(recorder.seen)
        data = _send_raw(p, raw)
    assert data.startswith(b"HTTP/1.1 200 "), data
    head, body = recorder.seen[before]
    assert [v for n, v in head.fields if n.lower() == "content-length"] == ["5"]
    assert body == b"hello"


def test_duplicate_zero_length_without_body_is_one_line_rfc9112_6_3(
    recorder: BodyRecorder,
) -> None:
    raw = b"GET /z HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"
    with ProxyThread(upstreams=[f"http://127.0.0.1:{recorder.upstream.port}"]) as p:
        before = len(recorder.seen)
        assert _send_raw(p, raw).startswith(b"HTTP/1.1 200 ")
    head, _ = recorder.seen[before]
    assert [v for n, v in head.fields if n.lower() == "content-length"] == ["0"]


# --- underscores in field names ----------------------------------------------------------------


@pytest.fixture(scope="module")
def origin() -> Iterator[RecordingOrigin]:
    with RecordingOrigin(0) as o:
        yield o


def _cfg(origin: RecordingOrigin, underscores: Underscores | None = None) -> ProxyConfig:
    cfg = ProxyConfig(upstreams={"default": [f"http://127.0.0.1:{origin.port}"]})
    if underscores is not None:
        cfg.headers.underscores = underscores
    return cfg


def _through(p: ProxyThread, origin: RecordingOrigin, fields: bytes,
             target: str | None = None, host: bytes = b"h") -> tuple[bytes, Head | None]:
    token = f"edge{next(_n)}"
    path = f"{PREFIX}{token}"
    raw = (b"GET " + (target or path).format(path=path).encode() + b" HTTP/1.1\r\nHost: " + host
           + b"\r\n" + fields + b"\r\n")
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    seen = origin.wait_for(token, timeout=0.5 if data.startswith(b"HTTP/1.1 200") else 0.2)
    return data, (seen[0].head if seen else None)


UNDERSCORED = (b"X_Forwarded_For: 203.0.113.9\r\nTransfer_Encoding: chunked\r\n"
               b"X-Kept: yes\r\n")


def test_underscore_names_are_dropped_by_default_and_logged(
    origin: RecordingOrigin, caplog: pytest.LogCaptureFixture
) -> None:
    with ProxyThread(_cfg(origin)) as p, caplog.at_level("WARNING", "onehop.proxy"):
        data, head = _through(p, origin, UNDERSCORED)
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert head is not None
    names = {n.lower() for n, _ in head.fields}
    assert "x_forwarded_for" not in names and "transfer_encoding" not in names
    assert "x-kept" in names
    assert head.get("X-Forwarded-For") == "127.0.0.1"
    assert "X_Forwarded_For" in caplog.text and "drop" in caplog.text


def test_underscore_names_pass_when_asked(origin: RecordingOrigin) -> None:
    with ProxyThread(_cfg(origin, Underscores.PASS)) as p:
        _, head = _through(p, origin, UNDERSCORED)
    assert head is not None and head.get("X_Forwarded_For") == "203.0.113.9"


def test_underscore_names_rejected_with_400_when_asked(origin: RecordingOrigin) -> None:
    with ProxyThread(_cfg(origin, Underscores.REJECT)) as p:
        data, head = _through(p, origin, UNDERSCORED)
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"underscore" in data
    assert head is None  # nothing reached the origin


def test_underscore_trailer_names_are_dropped() -> None:
    with BodyRecorderChunked() as up, ProxyThread(
            upstreams=[f"http://127.0.0.1:{up.upstream.port}"]) as p:
        raw = (b"POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n"
               b"5\r\nhello\r\n0\r\nX_Sig: 1\r\nX-Sig: 2\r\n\r\n")
        assert _send_raw(p, raw).startswith(b"HTTP/1.1 200 ")
    assert b"X-Sig: 2" in up.raw and b"X_Sig" not in up.raw


class BodyRecorderChunked(_Recorder):
    """Keeps everything a chunked request brought, up to its end."""

    def __init__(self) -> None:
        self.raw = b""
        super().__init__()

    def _handle(self, sock: socket.socket, index: int) -> None:
        while not self.raw.endswith(b"\r\n\r\n") or self.raw.count(b"\r\n\r\n") < 2:
            chunk = sock.recv(65536)
            if not chunk:
                return
            self.raw += chunk
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


# --- absolute-form: the target's authority, not the received Host (RFC 9112 §3.2.2) -----------


def test_reverse_proxy_forwards_absolute_form_authority_as_host_rfc9112_3_2_2(
    origin: RecordingOrigin,
) -> None:
    with ProxyThread(_cfg(origin)) as p:
        data, head = _through(p, origin, b"", target="http://b{path}", host=b"h")
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert head is not None
    assert head.get("Host") == "b"
    assert head.get("X-Forwarded-Host") == "b"
    assert head.start.split(" ")[1].startswith(PREFIX)  # origin-form upstream


def test_absolute_form_authority_is_x_forwarded_host_when_host_is_rewritten_rfc9112_3_2_2(
    origin: RecordingOrigin,
) -> None:
    cfg = _cfg(origin)
    cfg.headers.preserve_host = False
    with ProxyThread(cfg) as p:
        _, head = _through(p, origin, b"", target="http://b:81{path}", host=b"h")
    assert head is not None
    assert head.get("Host") == f"127.0.0.1:{origin.port}"
    assert head.get("X-Forwarded-Host") == "b:81"


def test_forward_proxy_sends_target_authority_not_received_host_rfc9112_3_2_2(
    origin: RecordingOrigin,
) -> None:
    cfg = ProxyConfig(forward=ForwardPolicy(allow=[f"127.0.0.1:{origin.port}"]))
    with ProxyThread(cfg) as p:
        _, head = _through(p, origin, b"", target=f"http://127.0.0.1:{origin.port}{{path}}",
                           host=b"elsewhere.test")
    assert head is not None
    assert head.get("Host") == f"127.0.0.1:{origin.port}"
    assert head.get("X-Forwarded-Host") == f"127.0.0.1:{origin.port}"


@pytest.mark.parametrize("target", [b"http:/admin", b"http:admin", b"http://h:8:0/x",
                                    b"http://u@h/x"])
def test_invalid_absolute_form_gets_400_at_the_proxy_rfc9110_4_2(
    origin: RecordingOrigin, target: bytes
) -> None:
    with ProxyThread(_cfg(origin)) as p:
        data = _send_raw(p, b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 "), data


@needs_node
@pytest.mark.parametrize("cl", [b"Content-Length: 5, 5\r\n",
                                b"Content-Length: 5\r\nContent-Length: 5\r\n",
                                b"Content-Length: 05\r\n"], ids=["list", "two-lines", "padded"])
def test_llhttp_upstream_accepts_what_the_proxy_accepted_rfc9110_8_6(cl: bytes) -> None:
    # Node's llhttp answers 400 to "5, 5" or two lines sent to it directly; through the proxy
    # it gets one plain line, so a request the proxy accepted is not refused upstream.
    port = free_port()
    with running(node_cmd(port), port), ProxyThread(upstreams=[f"http://127.0.0.1:{port}"]) as p, \
            socket.create_connection(("127.0.0.1", p.port), timeout=5) as sock:
        sock.sendall(b"POST /m2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n" + cl
                     + b"\r\nhello")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert b"hello from node\n" in data


def test_underscore_policy_from_toml_and_flag() -> None:
    from onehop.proxy.cli import build_config, register
    from onehop.proxy.config import ConfigError, from_dict

    base = {"upstreams": {"default": ["http://127.0.0.1:9"]}}
    assert from_dict({**base, "headers": {"underscores": "reject"}}).headers.underscores is (
        Underscores.REJECT)
    with pytest.raises(ConfigError, match=r"headers\.underscores: expected drop, pass or reject"):
        from_dict({**base, "headers": {"underscores": "maybe"}})
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["proxy", "--upstream", "http://127.0.0.1:9",
                              "--underscores-in-headers", "pass"])
    assert build_config(args).headers.underscores is Underscores.PASS
    assert ProxyConfig().headers.underscores is Underscores.DROP
