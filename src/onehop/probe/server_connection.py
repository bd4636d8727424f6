"""Origin-server checks on the connection's life: persistence, the close option, HTTP/1.0
keep-alive, pipelining, 1xx responses and how and when the server closes (RFC 9112 §9,
RFC 9110 §7.6.1 and §15.2, RFC 7230 §A.1.2).

Each check is a :class:`~onehop.probe.checks.Check` made by ``as_check``;
``server_checks`` lists them, with ``server_framing``'s, in the order they run.
"""

from __future__ import annotations

import threading
import time

from onehop.probe.checks import Outcome, Verdict, as_check
from onehop.probe.server_target import ServerTarget, _once
from onehop.probe.wire import PeerState, Response, WireError


def _close_check(t: ServerTarget, fields: list[tuple[str, str]]) -> Outcome:
    resp, state = _once(t, t.req(fields))
    if state in (PeerState.CLOSED, PeerState.RESET):
        return Verdict.PASS, f"{resp.summary()}; then {state.value}"
    return Verdict.FAIL, f"{resp.summary()}; connection {state.value} after response"


def _speaks_http10(resp: Response) -> bool:
    """A server answering HTTP/1.0 without keep-alive closes by the 1.0 rule (RFC 9112 §9.3)."""
    return resp.version == "HTTP/1.0" and "keep-alive" not in resp.tokens("Connection")


@as_check(
    "persist-default",
    "RFC 9112 §9.3",
    'HTTP/1.1 defaults to the use of "persistent connections", allowing multiple requests '
    "and responses to be carried over a single connection.",
)
def persist_default(t: ServerTarget) -> Outcome:
    with t.wire() as w:
        w.send(t.req())
        first = w.read_response()
        if _speaks_http10(first):
            return Verdict.INFO, f"server answers {first.summary()}: not persistent by default"
        if "close" in first.tokens("Connection"):
            return Verdict.FAIL, f"first response: {first.summary()}"
        err = w.send(t.req())
        if err:
            return Verdict.FAIL, f"second request failed to send: {err}"
        try:
            second = w.read_response()
        except WireError as exc:
            return Verdict.FAIL, f"second request on same connection not answered ({exc.kind})"
        return Verdict.PASS, f"two responses on one connection: {first.status}, {second.status}"


@as_check(
    "close-honoured",
    "RFC 9112 §9.6",
    'A server that receives a "close" connection option MUST initiate closure of the '
    "connection after it sends the final response to the request that contained the "
    '"close" connection option.',
)
def close_honoured(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "close")])


@as_check(
    "close-echoed",
    "RFC 9112 §9.6",
    'The server SHOULD send a "close" connection option in its final response on that connection.',
)
def close_echoed(t: ServerTarget) -> Outcome:
    resp, _ = _once(t, t.req([("Connection", "close")]), wait=0)
    if _speaks_http10(resp):
        return Verdict.PASS, f"{resp.summary()}: HTTP/1.0 without keep-alive means close"
    if "close" in resp.tokens("Connection"):
        return Verdict.PASS, resp.summary()
    return Verdict.FAIL, f"no close option in response: {resp.summary()}"


@as_check(
    "close-uppercase",
    "RFC 9110 §7.6.1",
    "Connection options are case-insensitive.",
)
def close_uppercase(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "CLOSE")])


@as_check("close-mixedcase", "RFC 9110 §7.6.1", "Connection options are case-insensitive.")
def close_mixedcase(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "Close")])


@as_check(
    "close-in-list",
    "RFC 9110 §7.6.1",
    "Connection        = #connection-option",
)
def close_in_list(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "foo, close")])


@as_check(
    "close-second-line",
    "RFC 9110 §5.3",
    "A recipient MAY combine multiple field lines within a field section that have the same "
    "field name into one field line, without changing the semantics of the message, by "
    "appending each subsequent field line value to the initial field line value in order, "
    "separated by a comma [...]",
)
def close_second_line(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "foo"), ("Connection", "close")])


@as_check(
    "close-beats-keepalive",
    "RFC 9112 §9.3",
    'If the "close" connection option is present (Section 9.6), the connection will not '
    "persist after the current response; else,",
)
def close_beats_keepalive(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "keep-alive, close")])


@as_check(
    "http10-closes",
    "RFC 9112 §9.3",
    'If the received protocol is HTTP/1.0, the "keep-alive" connection option is present, '
    "[...] the connection will persist after the current response; otherwise, [...] The "
    "connection will close after the current response.",
)
def http10_closes(t: ServerTarget) -> Outcome:
    return _close_check_v10(t)


def _close_check_v10(t: ServerTarget) -> Outcome:
    resp, state = _once(t, t.req(version="HTTP/1.0"))
    if state in (PeerState.CLOSED, PeerState.RESET):
        return Verdict.PASS, f"{resp.summary()}; then {state.value}"
    return Verdict.FAIL, f"{resp.summary()}; connection {state.value} for HTTP/1.0 client"


@as_check(
    "http10-keepalive",
    "RFC 9112 §C.2.2 (RFC 7230 §A.1.2)",
    "Some clients and servers might wish to be compatible with these previous approaches to "
    'persistent connections, by explicitly negotiating for them with a "Connection: '
    'keep-alive" request header field.',
)
def http10_keepalive(t: ServerTarget) -> Outcome:
    with t.wire() as w:
        w.send(t.req([("Connection", "keep-alive")], version="HTTP/1.0"))
        resp = w.read_response()
        state = w.peer_state(t.settle)
        has_ka = "keep-alive" in resp.tokens("Connection")
        if state is PeerState.OPEN and has_ka:
            if resp.framing in ("close", "close(timeout)"):
                return Verdict.FAIL, f"{resp.summary()} kept open but body is close-delimited"
            w.send(t.req([("Connection", "keep-alive")], version="HTTP/1.0"))
            second = w.read_response()
            return Verdict.PASS, f"{resp.summary()}; second response {second.status}"
        if state is not PeerState.OPEN and not has_ka:
            return Verdict.INFO, f"server declines 1.0 keep-alive: {resp.summary()}; {state.value}"
        if state is PeerState.OPEN:
            return Verdict.FAIL, f"{resp.summary()}; open without signalling keep-alive"
        return Verdict.FAIL, f"{resp.summary()}; signalled keep-alive but {state.value}"


@as_check(
    "keepalive-params",
    "RFC 9112 §C.2.2 (RFC 7230 §A.1.2)",
    'However, some implementations implement the explicitly negotiated ("Keep-Alive") '
    "version of persistent connections described in Section 19.7.1 of [RFC2068].",
)
def keepalive_params(t: ServerTarget) -> Outcome:
    resp, _ = _once(t, t.req([("Connection", "keep-alive")], version="HTTP/1.0"), wait=0)
    resp11, _ = _once(t, t.req(), wait=0)
    return Verdict.INFO, (
        f"1.0: Keep-Alive: {resp.get('Keep-Alive') or '-'}; "
        f"1.1: Keep-Alive: {resp11.get('Keep-Alive') or '-'}"
    )


@as_check(
    "pipeline-order",
    "RFC 9112 §9.3.2",
    "A server MAY process a sequence of pipelined requests in parallel if they all have safe "
    "methods (Section 9.2.1 of [HTTP]), but it MUST send the corresponding responses in the "
    "same order that the requests were received.",
)
def pipeline_order(t: ServerTarget) -> Outcome:
    base, _ = _once(t, t.req(), wait=0)
    if _speaks_http10(base):
        return Verdict.INFO, f"server answers {base.summary()}: no persistence, no pipelining"
    miss, _ = _once(t, t.req(path=t.missing_path), wait=0)
    if base.status != miss.status and "close" not in miss.tokens("Connection"):
        reqs = [("GET", t.path), ("GET", t.missing_path), ("GET", t.path)]
        expected = [f"GET {base.status}", f"GET {miss.status}", f"GET {base.status}"]
    else:  # the 404 would close the connection: tell the answers apart by HEAD framing
        reqs = [("GET", t.path), ("HEAD", t.path), ("GET", t.path)]
        expected = [f"GET {base.status}", f"HEAD {base.status}", f"GET {base.status}"]
    with t.wire() as w:
        w.send(b"".join(t.req(method=m, path=p) for m, p in reqs))
        got: list[str] = []
        for method, _ in reqs:
            try:
                got.append(f"{method} {w.read_response(method).status}")
            except WireError as exc:
                return Verdict.FAIL, f"only {len(got)} of 3 pipelined responses ({exc.kind})"
    if got == expected:
        return Verdict.PASS, f"3 responses in order: {', '.join(got)}"
    return Verdict.FAIL, f"responses {got}, expected {expected}"


@as_check(
    "pipeline-close",
    "RFC 9112 §9.6",
    'A server that sends a "close" connection option MUST initiate closure of the '
    'connection (see below) after it sends the response containing the "close" connection '
    "option. The server MUST NOT process any further requests received on that connection.",
)
def pipeline_close(t: ServerTarget) -> Outcome:
    base, _ = _once(t, t.req(), wait=0)
    if _speaks_http10(base):
        return Verdict.INFO, f"server answers {base.summary()}: no persistence, no pipelining"
    with t.wire() as w:
        w.send(t.req() + t.req([("Connection", "close")]) + t.req(path=t.missing_path))
        statuses = [w.read_response().status, w.read_response().status]
        try:
            extra = w.read_response(timeout=t.settle)
        except WireError as exc:
            return Verdict.PASS, f"answered {statuses}, then {exc.kind}; third not processed"
        return Verdict.FAIL, f"answered {statuses} and the request after close ({extra.status})"


@as_check(
    "no-close-on-1xx",
    "RFC 9112 §9.3",
    'A server that does not support persistent connections MUST send the "close" connection '
    "option in every response message that does not have a 1xx (Informational) status code.",
)
def no_close_on_1xx(t: ServerTarget) -> Outcome:
    head = t.req([("Content-Length", "5"), ("Expect", "100-continue")], method="POST")
    with t.wire() as w:
        w.send(head)
        try:
            interim = w.read_head(timeout=min(1.0, t.timeout))
        except WireError as exc:
            if exc.kind != "timeout":
                return Verdict.FAIL, f"connection {exc.kind} before 100 or body"
            w.send(b"hello")
            resp = w.read_response("POST")
            return Verdict.INFO, f"no 100 Continue sent within 1s; final {resp.summary()}"
        status = interim.start.split(" ")[1] if " " in interim.start else "?"
        if not status.startswith("1"):
            return Verdict.INFO, f"final response before body: {interim.start}"
        if "close" in interim.tokens("Connection"):
            return Verdict.FAIL, f"1xx carried close: {interim.start}"
        w.send(b"hello")
        resp = w.read_response("POST")
        return Verdict.PASS, f"{interim.start!s} without close, then final {resp.status}"


@as_check(
    "no-1xx-to-http10",
    "RFC 9110 §15.2",
    "Since HTTP/1.0 did not define any 1xx status codes, a server MUST NOT send a 1xx "
    "response to an HTTP/1.0 client.",
)
def no_1xx_to_http10(t: ServerTarget) -> Outcome:
    head = t.req(
        [("Content-Length", "5"), ("Expect", "100-continue")], method="POST", version="HTTP/1.0"
    )
    with t.wire() as w:
        w.send(head)
        try:
            first = w.read_head(timeout=min(1.0, t.timeout))
        except WireError as exc:
            if exc.kind != "timeout":
                return Verdict.FAIL, f"connection {exc.kind} before any response"
            return Verdict.PASS, "no 1xx to HTTP/1.0 client within 1s"
        if first.start.split(" ")[1:2] and first.start.split(" ")[1].startswith("1"):
            return Verdict.FAIL, f"sent {first.start!r} to an HTTP/1.0 client"
        return Verdict.PASS, f"answered {first.start!r} without 1xx"


@as_check(
    "lingering-close",
    "RFC 9112 §9.6",
    "If a server performs an immediate close of a TCP connection, there is a significant risk "
    "that the client will not be able to read the last HTTP response. [...] To avoid the TCP "
    "reset problem, servers typically close a connection in stages.",
)
def lingering_close(t: ServerTarget) -> Outcome:
    size = 8 * 1024 * 1024
    fields = [("Content-Length", str(size)), ("Connection", "close")]
    head = t.req(fields, method="POST")
    stop = threading.Event()
    sent = [0]
    with t.wire() as w:
        w.send(head)

        def pump() -> None:
            chunk = b"x" * 65536
            while not stop.is_set() and sent[0] < size:
                try:
                    w.sock.sendall(chunk)
                except OSError:
                    return
                sent[0] += len(chunk)

        sender = threading.Thread(target=pump, daemon=True)
        sender.start()
        try:
            resp = w.read_response("POST")
        except WireError as exc:
            stop.set()
            return Verdict.FAIL, f"response lost while sending body ({exc.kind}, sent {sent[0]} B)"
        finally:
            stop.set()
        sender.join(timeout=t.timeout)
        return Verdict.PASS, f"got {resp.status} while sending body ({sent[0]} B sent)"


@as_check(
    "idle-timeout",
    "RFC 9112 §9.5",
    "A client, server, or proxy MAY close the transport connection at any time.",
)
def idle_timeout(t: ServerTarget) -> Outcome:
    with t.wire() as w:
        w.send(t.req())
        resp = w.read_response()
        if "close" in resp.tokens("Connection"):
            return Verdict.INFO, "server closes after every response"
        after = w.idle_close_after(t.idle_limit)
    if after is None:
        return Verdict.INFO, f"idle connection still open after {t.idle_limit:.1f}s"
    return Verdict.INFO, f"idle connection closed by server after {after:.2f}s"


@as_check(
    "keepalive-field-without-option",
    "RFC 9110 §7.6.1",
    "In contrast, a connection-specific field received without a corresponding connection "
    "option usually indicates that the field has been improperly forwarded by an "
    "intermediary and ought to be ignored by the recipient.",
)
def keepalive_field_without_option(t: ServerTarget) -> Outcome:
    resp, state = _once(t, t.req([("Keep-Alive", "timeout=30, max=5")], version="HTTP/1.0"))
    if state in (PeerState.CLOSED, PeerState.RESET):
        return Verdict.PASS, f"Keep-Alive field alone ignored: {resp.summary()}; {state.value}"
    return Verdict.FAIL, f"HTTP/1.0 with Keep-Alive but no option kept {state.value}"


@as_check(
    "keepalive-timeout-vs-idle",
    "RFC 9112 §9.5",
    "A client or server that wishes to time out SHOULD issue a graceful close on the connection.",
)
def keepalive_timeout_vs_idle(t: ServerTarget) -> Outcome:
    with t.wire() as w:
        w.send(t.req([("Connection", "keep-alive")], version="HTTP/1.0"))
        resp = w.read_response()
        advertised = resp.get("Keep-Alive")
        if "keep-alive" not in resp.tokens("Connection"):
            return Verdict.INFO, f"no HTTP/1.0 keep-alive: {resp.summary()}"
        start = time.monotonic()
        state = w.peer_state(t.idle_limit)
        after = time.monotonic() - start
    if state is PeerState.OPEN:
        return Verdict.INFO, f"Keep-Alive: {advertised or '-'}; open after {t.idle_limit:.1f}s"
    if state is PeerState.RESET:
        return Verdict.FAIL, f"Keep-Alive: {advertised or '-'}; idle close by reset ({after:.2f}s)"
    return Verdict.PASS, f"Keep-Alive: {advertised or '-'}; graceful idle close after {after:.2f}s"
