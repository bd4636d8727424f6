"""Intermediary checks: a client on one side of the proxy, the recording origin on the other.

Each check sends raw requests through the proxy to ``RecordingOrigin`` paths carrying a
fresh token, then judges both the head the origin received and the response the client
got (RFC 9110 §7.6, RFC 9112 §9, RFC 7230 §A.1.2).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from onehop.probe.checks import PROXY_CHECKS, Outcome, Verdict, _register
from onehop.probe.origin import PREFIX, RecordingOrigin, Seen, body_for
from onehop.probe.wire import PeerState, Response, Wire, WireError, request

_counter = itertools.count(1)


@dataclass
class ProxyTarget:
    """A proxy at host:port that forwards to ``origin``."""

    host: str
    port: int
    origin: RecordingOrigin
    timeout: float = 5.0
    settle: float = 0.5
    run_id: str = field(default_factory=lambda: f"r{next(_counter)}")

    def token(self, name: str) -> str:
        """A token unique to this run and check."""
        return f"{self.run_id}-{name}-{next(_counter)}"

    def path(self, token: str, **params: str | list[str]) -> str:
        """The origin path that answers as *params* say (see ``onehop.probe.origin``)."""
        query = urlencode(params, doseq=True)
        return f"{PREFIX}{token}" + (f"?{query}" if query else "")

    def req(
        self,
        token: str,
        fields: list[tuple[str, str]] | None = None,
        version: str = "HTTP/1.1",
        method: str = "GET",
        params: dict[str, str] | None = None,
    ) -> bytes:
        """A request for the origin path, addressed to the origin's authority."""
        authority = f"{self.origin.host}:{self.origin.port}"
        return request(method, self.path(token, **(params or {})), authority, fields, version)

    def wire(self) -> Wire:
        """A fresh client connection to the proxy."""
        return Wire(self.host, self.port, self.timeout)


def _through(
    t: ProxyTarget,
    name: str,
    fields: list[tuple[str, str]] | None = None,
    version: str = "HTTP/1.1",
    wait: float = 0.0,
    params: dict[str, str] | None = None,
) -> tuple[Response, Seen | None, PeerState]:
    token = t.token(name)
    with t.wire() as w:
        w.send(t.req(token, fields, version, params=params))
        resp = w.read_response()
        state = w.peer_state(wait) if wait else PeerState.OPEN
    seen = t.origin.wait_for(token, 1, timeout=0.5)
    return resp, (seen[0] if seen else None), state


def _fields_named(head_fields: list[tuple[str, str]], name: str) -> list[str]:
    return [f"{n}: {v}" for n, v in head_fields if n.lower() == name.lower()]


def _request_stripped(
    t: ProxyTarget, name: str, fields: list[tuple[str, str]], forbidden: str, value: str = ""
) -> Outcome:
    resp, seen, _ = _through(t, name, fields)
    if seen is None:
        return Verdict.FAIL, f"request never reached the origin (client got {resp.status})"
    found = _fields_named(seen.head.fields, forbidden)
    if value:
        found = [f for f in found if value.lower() in f.lower()]
    if found:
        return Verdict.FAIL, f"origin received {found[0]!r}"
    conn = seen.head.get("Connection")
    return Verdict.PASS, f"origin got no {forbidden}; its Connection: {conn or '-'}"


def _response_stripped(
    t: ProxyTarget, name: str, forbidden: str, value: str, **params: str
) -> Outcome:
    resp, _, _ = _through(t, name, params=params)
    found = [f for f in _fields_named(resp.head.fields, forbidden) if value.lower() in f.lower()]
    if resp.status != 200:
        return Verdict.FAIL, f"client got {resp.status}"
    if found:
        return Verdict.FAIL, f"client received {found[0]!r}"
    return Verdict.PASS, f"client got no {forbidden}: {value}; {resp.summary()}"


_P = PROXY_CHECKS
_STRIP = (
    "Intermediaries MUST parse a received Connection header field before a message is "
    "forwarded and, for each connection-option in this field, remove any header or trailer "
    "field(s) from the message with the same name as the connection-option, and then remove "
    "the Connection header field itself (or replace it with the intermediary's own control "
    "options for the forwarded message)."
)
_FIXED = (
    "Furthermore, intermediaries SHOULD remove or replace fields that are known to require "
    "removal before forwarding, whether or not they appear as a connection-option, after "
    "applying those fields' semantics. This includes but is not limited to: Proxy-Connection "
    "[...], Keep-Alive [...], TE [...], Transfer-Encoding [...], Upgrade [...]"
)


@_register(_P, "req-strip-named", "RFC 9110 §7.6.1", _STRIP)
def req_strip_named(t: ProxyTarget) -> Outcome:
    fields = [("Connection", "X-Probe-Hop"), ("X-Probe-Hop", "1")]
    return _request_stripped(t, "named", fields, "X-Probe-Hop")


@_register(_P, "req-strip-named-2nd-line", "RFC 9110 §7.6.1", _STRIP)
def req_strip_named_second(t: ProxyTarget) -> Outcome:
    fields = [("Connection", "keep-alive"), ("Connection", "x-probe-hop2"), ("X-PROBE-HOP2", "1")]
    return _request_stripped(t, "named2", fields, "X-Probe-Hop2")


@_register(_P, "req-connection-replaced", "RFC 9110 §7.6.1", _STRIP)
def req_connection_replaced(t: ProxyTarget) -> Outcome:
    fields = [("Connection", "X-Probe-Opt")]
    return _request_stripped(t, "connopt", fields, "Connection", "x-probe-opt")


@_register(_P, "req-strip-keep-alive", "RFC 9110 §7.6.1", _FIXED)
def req_strip_keep_alive(t: ProxyTarget) -> Outcome:
    fields = [("Keep-Alive", "timeout=99, max=7")]
    return _request_stripped(t, "ka", fields, "Keep-Alive", "max=7")


@_register(_P, "req-strip-proxy-connection", "RFC 9110 §7.6.1", _FIXED)
def req_strip_proxy_connection(t: ProxyTarget) -> Outcome:
    fields = [("Proxy-Connection", "keep-alive")]
    return _request_stripped(t, "pc", fields, "Proxy-Connection")


@_register(_P, "req-strip-te", "RFC 9110 §7.6.1", _FIXED)
def req_strip_te(t: ProxyTarget) -> Outcome:
    fields = [("TE", "x-probe-coding")]
    return _request_stripped(t, "te", fields, "TE", "x-probe-coding")


@_register(_P, "req-strip-upgrade", "RFC 9110 §7.6.1", _FIXED)
def req_strip_upgrade(t: ProxyTarget) -> Outcome:
    fields = [("Upgrade", "x-probe/1")]
    return _request_stripped(t, "upg", fields, "Upgrade", "x-probe/1")


@_register(_P, "resp-strip-named", "RFC 9110 §7.6.1", _STRIP)
def resp_strip_named(t: ProxyTarget) -> Outcome:
    return _response_stripped(
        t, "rnamed", "X-Probe-Resp-Hop", "1", conn="X-Probe-Resp-Hop", hdr="X-Probe-Resp-Hop: 1"
    )


@_register(_P, "resp-connection-replaced", "RFC 9110 §7.6.1", _STRIP)
def resp_connection_replaced(t: ProxyTarget) -> Outcome:
    return _response_stripped(t, "rconn", "Connection", "x-probe-resp-opt", conn="X-Probe-Resp-Opt")


@_register(_P, "resp-strip-keep-alive", "RFC 9110 §7.6.1", _FIXED)
def resp_strip_keep_alive(t: ProxyTarget) -> Outcome:
    return _response_stripped(t, "rka", "Keep-Alive", "max=7", ka="timeout=99, max=7")


@_register(_P, "resp-strip-proxy-connection", "RFC 9110 §7.6.1", _FIXED)
def resp_strip_proxy_connection(t: ProxyTarget) -> Outcome:
    return _response_stripped(
        t, "rpc", "Proxy-Connection", "x-probe", hdr="Proxy-Connection: x-probe"
    )


@_register(_P, "resp-strip-upgrade", "RFC 9110 §7.6.1", _FIXED)
def resp_strip_upgrade(t: ProxyTarget) -> Outcome:
    return _response_stripped(t, "rupg", "Upgrade", "x-probe/1", hdr="Upgrade: x-probe/1")


@_register(
    _P,
    "client-persist",
    "RFC 9112 §9.3",
    'HTTP/1.1 defaults to the use of "persistent connections", allowing multiple requests '
    "and responses to be carried over a single connection.",
)
def client_persist(t: ProxyTarget) -> Outcome:
    with t.wire() as w:
        w.send(t.req(t.token("p1")))
        first = w.read_response()
        if "close" in first.tokens("Connection"):
            return Verdict.FAIL, f"first response: {first.summary()}"
        w.send(t.req(t.token("p2")))
        try:
            second = w.read_response()
        except WireError as exc:
            return Verdict.FAIL, f"second request not answered ({exc.kind})"
    return Verdict.PASS, f"two responses on one client connection: {first.status}, {second.status}"


@_register(
    _P,
    "client-close-honoured",
    "RFC 9112 §9.6",
    'A server that receives a "close" connection option MUST initiate closure of the '
    "connection after it sends the final response to the request that contained the "
    '"close" connection option.',
)
def client_close(t: ProxyTarget) -> Outcome:
    resp, _, state = _through(t, "cclose", [("Connection", "close")], wait=t.settle)
    if state in (PeerState.CLOSED, PeerState.RESET):
        return Verdict.PASS, f"{resp.summary()}; then {state.value}"
    return Verdict.FAIL, f"{resp.summary()}; client connection {state.value}"


@_register(
    _P,
    "pipeline-order",
    "RFC 9112 §9.3.2",
    "A server MAY process a sequence of pipelined requests in parallel if they all have safe "
    "methods (Section 9.2.1 of [HTTP]), but it MUST send the corresponding responses in the "
    "same order that the requests were received.",
)
def proxy_pipeline(t: ProxyTarget) -> Outcome:
    tokens = [t.token(f"pl{i}") for i in range(3)]
    with t.wire() as w:
        w.send(b"".join(t.req(tok) for tok in tokens))
        got: list[str] = []
        for _ in tokens:
            try:
                got.append(w.read_response().get("X-Probe-Token") or "?")
            except WireError as exc:
                return Verdict.FAIL, f"only {len(got)} of 3 pipelined responses ({exc.kind})"
    if got == tokens:
        return Verdict.PASS, "3 pipelined responses in request order"
    return Verdict.FAIL, f"order {got}, sent {tokens}"


@_register(
    _P,
    "upstream-reuse",
    "RFC 9112 §9.3",
    "HTTP implementations SHOULD support persistent connections.",
)
def upstream_reuse(t: ProxyTarget) -> Outcome:
    a, b = t.token("ra"), t.token("rb")
    with t.wire() as w:
        w.send(t.req(a))
        w.read_response()
        w.send(t.req(b))
        w.read_response()
    sa, sb = t.origin.wait_for(a, timeout=0.5), t.origin.wait_for(b, timeout=0.5)
    if not sa or not sb:
        return Verdict.FAIL, "origin did not receive both requests"
    if sa[0].conn_id == sb[0].conn_id:
        conn = sa[0].head.get("Connection") or "-"
        return Verdict.PASS, f"both requests on upstream connection #{sa[0].conn_id}; {conn}"
    conn = sa[0].head.get("Connection") or "-"
    return Verdict.INFO, f"new upstream connection per request (upstream Connection: {conn})"


def _retire(t: ProxyTarget, name: str, **params: str) -> Outcome:
    params["linger"] = "1.5"
    a, b = t.token(f"{name}a"), t.token(f"{name}b")
    w = t.wire()
    try:
        w.send(t.req(a, params=params))
        first = w.read_response()
        if "close" in first.tokens("Connection") or w.peer_state(0.05) is not PeerState.OPEN:
            w.close()  # the proxy ended the client connection too: continue on a new one
            w = t.wire()
        w.send(t.req(b))
        try:
            second = w.read_response()
        except WireError as exc:
            return Verdict.FAIL, f"request after upstream close not answered ({exc.kind})"
    finally:
        w.close()
    sa, sb = t.origin.wait_for(a, timeout=0.5), t.origin.wait_for(b, timeout=0.5)
    if not sa or not sb:
        return Verdict.FAIL, "origin did not receive both requests"
    if sb[0].after_close or sb[0].conn_id == sa[0].conn_id:
        return Verdict.FAIL, f"next request sent on the retired upstream #{sa[0].conn_id}"
    return Verdict.PASS, (
        f"first on upstream #{sa[0].conn_id} ({first.status}), next on #{sb[0].conn_id} "
        f"({second.status})"
    )


@_register(
    _P,
    "upstream-retire-close",
    "RFC 9112 §9.6",
    'A client that receives a "close" connection option MUST cease sending requests on that '
    "connection and close the connection after reading the response message containing the "
    '"close" connection option; [...]',
)
def upstream_retire_close(t: ProxyTarget) -> Outcome:
    return _retire(t, "rc", conn="close")


@_register(
    _P,
    "upstream-retire-http10",
    "RFC 9112 §9.3",
    'If the received protocol is HTTP/1.0, the "keep-alive" connection option is present, '
    "[...] the connection will persist after the current response; otherwise, [...] The "
    "connection will close after the current response.",
)
def upstream_retire_http10(t: ProxyTarget) -> Outcome:
    return _retire(t, "r10", v="1.0")


@_register(
    _P,
    "http10-client-closed",
    "RFC 9112 §9.3",
    'If the received protocol is HTTP/1.0, the "keep-alive" connection option is present, '
    "either the recipient is not a proxy or the message is a response, [...] the connection "
    "will persist after the current response; otherwise, [...] The connection will close "
    "after the current response.",
)
def http10_client_closed(t: ProxyTarget) -> Outcome:
    resp, _, state = _through(t, "c10", version="HTTP/1.0", wait=t.settle)
    if state in (PeerState.CLOSED, PeerState.RESET):
        return Verdict.PASS, f"{resp.summary()}; then {state.value}"
    return Verdict.FAIL, f"{resp.summary()}; HTTP/1.0 client connection {state.value}"


@_register(
    _P,
    "http10-client-keepalive",
    "RFC 9112 §9.3 (RFC 7230 §6.3)",
    "A proxy server MUST NOT maintain a persistent connection with an HTTP/1.0 client (see "
    "Appendix C.2.2 [...]).",
)
def http10_client_keepalive(t: ProxyTarget) -> Outcome:
    fields = [("Connection", "keep-alive")]
    resp, _, state = _through(t, "c10ka", fields, version="HTTP/1.0", wait=t.settle)
    return Verdict.INFO, f"{resp.summary()}; then {state.value}"


@_register(
    _P,
    "dechunk-http10",
    "RFC 9112 §6.1",
    "A server MUST NOT send a response containing Transfer-Encoding unless the corresponding "
    "request indicates HTTP/1.1 (or later minor revisions).",
)
def dechunk_http10(t: ProxyTarget) -> Outcome:
    token = t.token("dc")
    with t.wire() as w:
        w.send(t.req(token, version="HTTP/1.0", params={"body": "chunked"}))
        resp = w.read_response()
    if resp.get("Transfer-Encoding") is not None:
        return (
            Verdict.FAIL,
            f"HTTP/1.0 client got Transfer-Encoding: {resp.get('Transfer-Encoding')}",
        )
    if resp.body != body_for(token):
        return Verdict.FAIL, f"body differs ({len(resp.body)} B, framing {resp.framing})"
    return Verdict.PASS, f"de-chunked, {len(resp.body)} B framed by {resp.framing}"


@_register(
    _P,
    "close-delimited-relayed",
    "RFC 9112 §6.3",
    "Otherwise, this is a response message without a declared message body length, so the "
    "message body length is determined by the number of octets received prior to the server "
    "closing the connection.",
)
def close_delimited(t: ProxyTarget) -> Outcome:
    token = t.token("cd")
    with t.wire() as w:
        w.send(t.req(token, params={"body": "close"}))
        resp = w.read_response()
    if resp.body != body_for(token):
        return Verdict.FAIL, f"body differs ({len(resp.body)} B, framing {resp.framing})"
    return Verdict.PASS, f"{len(resp.body)} B relayed intact, framed by {resp.framing}"


_VIA = "A proxy MUST send an appropriate Via header field, as described below, in each message "
_VIA += "that it forwards."


@_register(_P, "via-request", "RFC 9110 §7.6.3", _VIA)
def via_request(t: ProxyTarget) -> Outcome:
    _, seen, _ = _through(t, "via")
    if seen is None:
        return Verdict.FAIL, "request never reached the origin"
    via = seen.head.get("Via")
    return (Verdict.PASS, f"origin got Via: {via}") if via else (Verdict.FAIL, "no Via upstream")


@_register(_P, "via-response", "RFC 9110 §7.6.3", _VIA)
def via_response(t: ProxyTarget) -> Outcome:
    resp, _, _ = _through(t, "viar")
    via = resp.get("Via")
    return (Verdict.PASS, f"client got Via: {via}") if via else (Verdict.FAIL, "no Via downstream")


@_register(
    _P,
    "xff-hop-abuse",
    "RFC 9110 §7.6.1",
    "Intermediaries MUST parse a received Connection header field before a message is "
    "forwarded and, for each connection-option in this field, remove any header or trailer "
    "field(s) from the message with the same name as the connection-option, [...]",
)
def xff_abuse(t: ProxyTarget) -> Outcome:
    fields = [("Connection", "X-Forwarded-For"), ("X-Forwarded-For", "203.0.113.9")]
    _, seen, _ = _through(t, "xff", fields)
    if seen is None:
        return Verdict.INFO, "request never reached the origin"
    xff = seen.head.get("X-Forwarded-For")
    return Verdict.INFO, f"origin X-Forwarded-For: {xff or '-'}"


@_register(
    _P,
    "upgrade-relayed",
    "RFC 9110 §7.8",
    "A server that sends a 101 (Switching Protocols) response MUST send an Upgrade header "
    "field to indicate the new protocol(s) to which the connection is being switched; [...]",
)
def upgrade_relayed(t: ProxyTarget) -> Outcome:
    token = t.token("up")
    fields = [("Connection", "Upgrade"), ("Upgrade", "x-probe-echo")]
    with t.wire() as w:
        w.send(t.req(token, fields, params={"upgrade": "1"}))
        resp = w.read_response()
        if resp.status != 101:
            seen = t.origin.wait_for(token, timeout=0.5)
            upg = seen[0].head.get("Upgrade") if seen else None
            if upg:
                return Verdict.FAIL, f"origin saw Upgrade: {upg} but client got {resp.status}"
            return Verdict.INFO, f"upgrade not relayed (proxy dropped Upgrade): {resp.status}"
        if "x-probe-echo" not in resp.tokens("Upgrade"):
            return Verdict.FAIL, f"101 without our Upgrade: {resp.get('Upgrade')}"
        w.send(b"ping")
        data = bytes(w.buf)
        w.buf.clear()
        try:
            while len(data) < 9:
                w._fill(time.monotonic() + t.timeout)
                data += bytes(w.buf)
                w.buf.clear()
        except WireError as exc:
            return Verdict.FAIL, f"101 relayed but tunnel broken ({exc.kind}, got {data!r})"
    if data.startswith(b"echo:ping"):
        return Verdict.PASS, "101 relayed and bytes tunnelled both ways"
    return Verdict.FAIL, f"tunnel returned {data[:30]!r}"


@_register(
    _P,
    "duplicate-cl-normalised",
    "RFC 9110 §8.6",
    "a recipient MAY either reject the message as invalid or replace that invalid field "
    "value with a single instance of the decimal value, since that would indicate that the "
    "duplicated field values had been generated or combined by an upstream message processor.",
)
def duplicate_cl_normalised(t: ProxyTarget) -> Outcome:
    # Two identical Content-Length lines and a list: a proxy that accepts them must send one
    # plain line on, or a strict upstream (llhttp, h11) answers 400 to what it accepted.
    token = t.token("dupcl")
    authority = f"{t.origin.host}:{t.origin.port}"
    fields = [("Content-Length", "5"), ("Content-Length", "5, 5")]
    with t.wire() as w:
        w.send(request("POST", t.path(token), authority, fields, body=b"hello"))
        resp = w.read_response("POST")
    seen = t.origin.wait_for(token, timeout=0.5)
    if not seen:
        if 400 <= resp.status < 500:
            return Verdict.PASS, f"rejected before forwarding: {resp.summary()}"
        return Verdict.FAIL, f"never reached the origin; client got {resp.summary()}"
    lines = _fields_named(seen[0].head.fields, "Content-Length")
    if lines == ["Content-Length: 5"]:
        return Verdict.PASS, "origin got one line: Content-Length: 5"
    return Verdict.FAIL, f"origin got {lines}: forwarded as received"


@_register(
    _P,
    "absolute-form-authority-wins",
    "RFC 9112 §3.2.2",
    "When an origin server receives a request with an absolute-form of request-target, the "
    "origin server MUST ignore the received Host header field (if any) and instead use the "
    "host information of the request-target.",
)
def absolute_form_authority(t: ProxyTarget) -> Outcome:
    # The proxy stands in for the origin server here: the host asked for is the target's
    # authority; the received Host ("elsewhere.invalid") must not go on as if it were.
    token = t.token("absform")
    authority = f"{t.origin.host}:{t.origin.port}"
    with t.wire() as w:
        w.send(request("GET", f"http://{authority}{t.path(token)}", "elsewhere.invalid"))
        resp = w.read_response()
    seen = t.origin.wait_for(token, timeout=0.5)
    if not seen:
        return Verdict.INFO, f"absolute-form not forwarded: {resp.summary()}"
    head = seen[0].head
    sent = [v for n, v in head.fields if n.lower() in ("host", "x-forwarded-host")]
    if any("elsewhere.invalid" in v for v in sent):
        return Verdict.FAIL, (f"origin got Host: {head.get('Host')}, X-Forwarded-Host: "
                              f"{head.get('X-Forwarded-Host') or '-'} (the received Host)")
    return Verdict.PASS, f"origin got Host: {head.get('Host')}"
