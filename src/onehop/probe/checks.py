"""One check per RFC sentence: the probe's catalogue of origin-server and proxy checks.

Every check is a small function registered with its id, the RFC section and the
sentence it derives from; it returns a verdict (pass/fail/info) and one line of
evidence taken from the raw bytes on the wire (``onehop.probe.wire``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from onehop.probe.wire import PeerState, Response, Wire, WireError, request


class Verdict(Enum):
    """The outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    INFO = "info"


Outcome = tuple[Verdict, str]


@dataclass(frozen=True)
class Check:
    """A check: id, the RFC section and sentence it derives from, and its function."""

    id: str
    section: str
    sentence: str
    run: Callable[[Any], Outcome]


@dataclass
class Result:
    """A check's verdict with one line of evidence and how long it took."""

    id: str
    section: str
    sentence: str
    verdict: Verdict
    evidence: str
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "id": self.id,
            "section": self.section,
            "sentence": self.sentence,
            "verdict": self.verdict.value,
            "evidence": self.evidence,
            "seconds": round(self.seconds, 3),
        }


SERVER_CHECKS: list[Check] = []
PROXY_CHECKS: list[Check] = []
CLIENT_CHECKS: list[Check] = []


def _register(
    registry: list[Check], check_id: str, section: str, sentence: str
) -> Callable[[Callable[[Any], Outcome]], Callable[[Any], Outcome]]:
    def deco(func: Callable[[Any], Outcome]) -> Callable[[Any], Outcome]:
        registry.append(Check(check_id, section, sentence, func))
        return func

    return deco


def run_check(check: Check, target: Any) -> Result:
    """Run *check* against *target*; an unexpected exception is a fail with its text."""
    start = time.monotonic()
    try:
        verdict, evidence = check.run(target)
    except WireError as exc:
        verdict, evidence = Verdict.FAIL, f"wire: {exc}"
    except OSError as exc:
        verdict, evidence = Verdict.FAIL, f"socket: {type(exc).__name__}: {exc}"
    return Result(
        check.id, check.section, check.sentence, verdict, evidence, time.monotonic() - start
    )


# --------------------------------------------------------------------------- origin server


@dataclass
class ServerTarget:
    """An origin server under test, from ``http://host:port/path``."""

    host: str
    port: int
    path: str = "/"
    timeout: float = 5.0
    settle: float = 0.5
    idle_limit: float = 5.0
    missing_path: str = "/__onehop_probe_missing__"
    no_content_path: str | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_url(
        cls,
        url: str,
        timeout: float = 5.0,
        idle_limit: float = 5.0,
        no_content_path: str | None = None,
    ) -> ServerTarget:
        """Parse an ``http://`` URL; the path (with query) is what every check requests."""
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"need an http:// URL, got {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        return cls(
            parts.hostname,
            parts.port or 80,
            path,
            timeout,
            idle_limit=idle_limit,
            no_content_path=no_content_path,
        )

    @property
    def authority(self) -> str:
        """The Host field value."""
        return f"{self.host}:{self.port}"

    def wire(self) -> Wire:
        """Open a fresh connection."""
        return Wire(self.host, self.port, self.timeout)

    def req(
        self,
        fields: list[tuple[str, str]] | None = None,
        method: str = "GET",
        version: str = "HTTP/1.1",
        path: str | None = None,
        body: bytes = b"",
    ) -> bytes:
        """Build a request for the target path with the given extra fields."""
        return request(method, path or self.path, self.authority, fields, version, body)


def _once(
    t: ServerTarget, data: bytes, method: str = "GET", wait: float | None = None
) -> tuple[Response, PeerState]:
    with t.wire() as w:
        w.send(data)
        resp = w.read_response(method)
        return resp, w.peer_state(t.settle if wait is None else wait)


def _close_check(t: ServerTarget, fields: list[tuple[str, str]]) -> Outcome:
    resp, state = _once(t, t.req(fields))
    if state in (PeerState.CLOSED, PeerState.RESET):
        return Verdict.PASS, f"{resp.summary()}; then {state.value}"
    return Verdict.FAIL, f"{resp.summary()}; connection {state.value} after response"


def _speaks_http10(resp: Response) -> bool:
    """A server answering HTTP/1.0 without keep-alive closes by the 1.0 rule (RFC 9112 §9.3)."""
    return resp.version == "HTTP/1.0" and "keep-alive" not in resp.tokens("Connection")


_S = SERVER_CHECKS


@_register(
    _S,
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


@_register(
    _S,
    "close-honoured",
    "RFC 9112 §9.6",
    'A server that receives a "close" connection option MUST initiate closure of the '
    "connection after it sends the final response to the request that contained the "
    '"close" connection option.',
)
def close_honoured(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "close")])


@_register(
    _S,
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


@_register(
    _S,
    "close-uppercase",
    "RFC 9110 §7.6.1",
    "Connection options are case-insensitive.",
)
def close_uppercase(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "CLOSE")])


@_register(_S, "close-mixedcase", "RFC 9110 §7.6.1", "Connection options are case-insensitive.")
def close_mixedcase(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "Close")])


@_register(
    _S,
    "close-in-list",
    "RFC 9110 §7.6.1",
    "Connection        = #connection-option",
)
def close_in_list(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "foo, close")])


@_register(
    _S,
    "close-second-line",
    "RFC 9110 §5.3",
    "A recipient MAY combine multiple field lines within a field section that have the same "
    "field name into one field line, without changing the semantics of the message, by "
    "appending each subsequent field line value to the initial field line value in order, "
    "separated by a comma [...]",
)
def close_second_line(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "foo"), ("Connection", "close")])


@_register(
    _S,
    "close-beats-keepalive",
    "RFC 9112 §9.3",
    'If the "close" connection option is present (Section 9.6), the connection will not '
    "persist after the current response; else,",
)
def close_beats_keepalive(t: ServerTarget) -> Outcome:
    return _close_check(t, [("Connection", "keep-alive, close")])


@_register(
    _S,
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


@_register(
    _S,
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


@_register(
    _S,
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


@_register(
    _S,
    "http10-no-chunked",
    "RFC 9112 §6.1",
    "A server MUST NOT send a response containing Transfer-Encoding unless the corresponding "
    "request indicates HTTP/1.1 (or later minor revisions).",
)
def http10_no_chunked(t: ServerTarget) -> Outcome:
    resp, _ = _once(t, t.req(version="HTTP/1.0"), wait=0)
    if resp.get("Transfer-Encoding") is not None:
        return Verdict.FAIL, f"Transfer-Encoding: {resp.get('Transfer-Encoding')} to HTTP/1.0"
    return Verdict.PASS, f"{resp.summary()}; body framed by {resp.framing}"


@_register(
    _S,
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


@_register(
    _S,
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


@_register(
    _S,
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


@_register(
    _S,
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


@_register(
    _S,
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


def _malformed(t: ServerTarget, data: bytes, must_close: bool, also_ok: bool = False) -> Outcome:
    with t.wire() as w:
        w.send(data)
        try:
            resp = w.read_response()
        except WireError as exc:
            if exc.kind in ("closed", "reset"):
                return Verdict.FAIL, f"no 400, connection {exc.kind}"
            raise
        state = w.peer_state(t.settle)
    closed = state in (PeerState.CLOSED, PeerState.RESET)
    ev = f"{resp.summary()}; then {state.value}"
    if resp.status == 400:
        if must_close and not closed:
            return Verdict.FAIL, f"400 but connection left {state.value}"
        return Verdict.PASS, ev
    if also_ok and resp.status < 400:
        return Verdict.PASS, f"accepted (allowed): {ev}"
    if resp.status >= 400 and (closed or not must_close):
        return Verdict.INFO, f"rejected, but not with 400 (e.g. method or coding first): {ev}"
    return Verdict.FAIL, f"expected 400: {ev}"


@_register(
    _S,
    "obs-fold-rejected",
    "RFC 9112 §5.2",
    "A server that receives an obs-fold in a request message [...] MUST either reject the "
    "message by sending a 400 (Bad Request) [...] or replace each received obs-fold with one "
    "or more SP octets prior to interpreting the field value or forwarding the message "
    "downstream.",
)
def obs_fold(t: ServerTarget) -> Outcome:
    data = t.req([("X-Folded", "a\r\n b")])
    return _malformed(t, data, must_close=False, also_ok=True)


@_register(
    _S,
    "cl-te-closes",
    "RFC 9112 §6.1",
    "A server MAY reject a request that contains both Content-Length and Transfer-Encoding or "
    "process such a request in accordance with the Transfer-Encoding alone. Regardless, the "
    "server MUST close the connection after responding to such a request to avoid the "
    "potential attacks.",
)
def cl_te(t: ServerTarget) -> Outcome:
    data = t.req(
        [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
        method="POST",
        body=b"0\r\n\r\n",
    )
    with t.wire() as w:
        w.send(data)
        try:
            resp = w.read_response("POST")
        except WireError as exc:
            if exc.kind in ("closed", "reset"):
                return Verdict.PASS, f"no response, connection {exc.kind}"
            raise
        state = w.peer_state(t.settle)
    if state in (PeerState.CLOSED, PeerState.RESET):
        return Verdict.PASS, f"{resp.summary()}; then {state.value}"
    return Verdict.FAIL, f"{resp.summary()}; connection left {state.value}"


@_register(
    _S,
    "bad-cl-400-close",
    "RFC 9112 §6.3",
    "If the unrecoverable error is in a request message, the server MUST respond with a 400 "
    "(Bad Request) status code and then close the connection.",
)
def bad_content_length(t: ServerTarget) -> Outcome:
    data = t.req([("Content-Length", "5x")], method="POST", body=b"hello")
    return _malformed(t, data, must_close=True)


@_register(
    _S,
    "te-not-chunked-400",
    "RFC 9112 §6.3",
    "If a Transfer-Encoding header field is present in a request and the chunked transfer "
    "coding is not the final encoding, the message body length cannot be determined reliably; "
    "the server MUST respond with the 400 (Bad Request) status code and then close the "
    "connection.",
)
def te_not_chunked(t: ServerTarget) -> Outcome:
    data = t.req([("Transfer-Encoding", "gzip")], method="POST", body=b"hello")
    return _malformed(t, data, must_close=True)


@_register(
    _S,
    "missing-host-400",
    "RFC 9112 §3.2",
    "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request "
    "message that lacks a Host header field [...]",
)
def missing_host(t: ServerTarget) -> Outcome:
    return _malformed(t, request("GET", t.path, ""), must_close=False)


@_register(
    _S,
    "double-host-400",
    "RFC 9112 §3.2",
    "A server MUST respond with a 400 (Bad Request) status code to [...] any request message "
    "that contains more than one Host header field line [...]",
)
def double_host(t: ServerTarget) -> Outcome:
    return _malformed(t, t.req([("Host", "other.invalid")]), must_close=False)


#: How long a server may take to answer a complete bad request-line (it has every byte it needs).
_EARLY: float = 2.0


@_register(
    _S,
    "bad-request-line-early-400",
    "RFC 9112 §3",
    "Recipients of an invalid request-line SHOULD respond with either a 400 (Bad Request) "
    "error or a 301 (Moved Permanently) redirect with the request-target properly encoded.",
)
def bad_request_line_early(t: ServerTarget) -> Outcome:
    # The request-line (a NUL inside the version) and one field line; the head never ends.
    # A server that judges the line once its CRLF is in answers at once; one that waits for
    # the whole head answers only when its header timeout fires (408), or never.
    data = f"GET {t.path} HTTP/1.\x001\r\nHost: {t.authority}\r\n".encode("latin-1")
    wait = min(t.timeout, _EARLY)
    with t.wire() as w:
        w.send(data)
        start = time.monotonic()
        try:
            resp = w.read_response(timeout=wait)
        except WireError as exc:
            if exc.kind == "timeout":
                return Verdict.FAIL, (f"no answer within {wait:g} s: the server waits for the "
                                      "rest of the head")
            return Verdict.FAIL, f"no 400, connection {exc.kind}"
    took = time.monotonic() - start
    if resp.status == 400:
        return Verdict.PASS, f"400 after {took:.2f} s, head still incomplete"
    if 400 <= resp.status < 500 and resp.status != 408:
        return Verdict.INFO, f"rejected with {resp.status} after {took:.2f} s"
    return Verdict.FAIL, f"{resp.summary()} after {took:.2f} s"


@_register(
    _S,
    "bare-lf",
    "RFC 9112 §2.2",
    "Although the line terminator for the start-line and fields is the sequence CRLF, a "
    "recipient MAY recognize a single LF as a line terminator and ignore any preceding CR.",
)
def bare_lf(t: ServerTarget) -> Outcome:
    data = request("GET", t.path, t.authority, eol=b"\n")
    with t.wire() as w:
        w.send(data)
        try:
            resp = w.read_response()
        except WireError as exc:
            return Verdict.INFO, f"bare-LF request: no response ({exc.kind})"
        state = w.peer_state(t.settle)
    return Verdict.INFO, f"bare-LF request: {resp.summary()}; then {state.value}"


@_register(
    _S,
    "head-no-body",
    "RFC 9112 §6.3",
    "Any response to a HEAD request [...] is always terminated by the first empty line after "
    "the header fields, regardless of the header fields present in the message, and thus "
    "cannot contain a message body or trailer section.",
)
def head_no_body(t: ServerTarget) -> Outcome:
    with t.wire() as w:
        w.send(t.req(method="HEAD"))
        resp = w.read_response("HEAD")
        state = w.peer_state(t.settle)
        if state is PeerState.DATA:
            return Verdict.FAIL, f"{len(w.buf)} bytes after HEAD head: {bytes(w.buf[:30])!r}"
        if state is PeerState.OPEN:
            w.send(t.req())
            nxt = w.read_response()
            return Verdict.PASS, f"HEAD {resp.status} without body; next GET {nxt.status} in sync"
        return Verdict.PASS, f"HEAD {resp.status} without body; then {state.value}"


@_register(
    _S,
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


def _no_body_after(t: ServerTarget, w: Wire, resp: Response, label: str) -> Outcome:
    """Judge that nothing follows a bodiless response's head (RFC 9112 §6.3 item 1)."""
    te = resp.get("Transfer-Encoding")
    cl = resp.get("Content-Length")
    state = w.peer_state(t.settle)
    if state is PeerState.DATA:
        return Verdict.FAIL, f"{len(w.buf)} bytes after {label} head: {bytes(w.buf[:30])!r}"
    if te is not None:
        return Verdict.FAIL, f"{label} carries Transfer-Encoding: {te}"
    extra = f" (Content-Length: {cl})" if cl is not None else ""
    if state is PeerState.OPEN:
        w.send(t.req())
        nxt = w.read_response()
        return Verdict.PASS, f"{label} without body{extra}; next GET {nxt.status} in sync"
    return Verdict.PASS, f"{label} without body{extra}; then {state.value}"


@_register(
    _S,
    "204-no-body",
    "RFC 9110 §15.3.5",
    "A 204 response is terminated by the end of the header section; it cannot contain "
    "content or trailers.",
)
def no_content_no_body(t: ServerTarget) -> Outcome:
    if not t.no_content_path:
        return Verdict.INFO, "no path answering 204 given (--no-content-path)"
    with t.wire() as w:
        w.send(t.req(path=t.no_content_path))
        resp = w.read_response("HEAD")  # read the head only; the body, if any, stays buffered
        if resp.status != 204:
            return Verdict.INFO, f"{t.no_content_path} answered {resp.status}, not 204"
        return _no_body_after(t, w, resp, "204")


@_register(
    _S,
    "304-no-body",
    "RFC 9110 §15.4.5",
    "A 304 response is terminated by the end of the header section; it cannot contain "
    "content or trailers.",
)
def not_modified_no_body(t: ServerTarget) -> Outcome:
    first, _ = _once(t, t.req(), wait=0)
    etag, modified = first.get("ETag"), first.get("Last-Modified")
    if etag:
        cond = [("If-None-Match", etag)]
    elif modified:
        cond = [("If-Modified-Since", modified)]
    else:
        return Verdict.INFO, f"{first.status} has neither ETag nor Last-Modified: no 304 to ask"
    with t.wire() as w:
        w.send(t.req(cond))
        resp = w.read_response("HEAD")
        if resp.status != 304:
            return Verdict.INFO, f"conditional GET ({cond[0][0]}) answered {resp.status}"
        return _no_body_after(t, w, resp, "304")


@_register(
    _S,
    "garbage-field-400-close",
    "RFC 9112 §2.2",
    "When a server listening only for HTTP request messages, or processing what appears from "
    "the start-line to be an HTTP request message, receives a sequence of octets that does "
    "not match the HTTP-message grammar aside from the robustness exceptions listed above, "
    "the server SHOULD respond with a 400 (Bad Request) response and close the connection.",
)
def garbage_field(t: ServerTarget) -> Outcome:
    data = t.req().replace(b"\r\n\r\n", b"\r\nthis is not a field line\r\n\r\n", 1)
    return _malformed(t, data, must_close=True)


@_register(
    _S,
    "space-before-colon-400",
    "RFC 9112 §5.1",
    "A server MUST reject, with a response status code of 400 (Bad Request), any received "
    "request message that contains whitespace between a header field name and colon.",
)
def space_before_colon(t: ServerTarget) -> Outcome:
    data = t.req().replace(b"\r\n\r\n", b"\r\nX-Probe : 1\r\n\r\n", 1)
    return _malformed(t, data, must_close=False)


@_register(
    _S,
    "conflicting-cl-400-close",
    "RFC 9112 §6.3",
    "If a message is received without Transfer-Encoding and with an invalid Content-Length "
    "header field, then the message framing is invalid and the recipient MUST treat it as an "
    "unrecoverable error, unless the field value can be successfully parsed as a "
    "comma-separated list [...], all values in the list are valid, and all values in the "
    "list are the same [...]. If the unrecoverable error is in a request message, the server "
    "MUST respond with a 400 (Bad Request) status code and then close the connection.",
)
def conflicting_content_length(t: ServerTarget) -> Outcome:
    fields = [("Content-Length", "5"), ("Content-Length", "6")]
    return _malformed(t, t.req(fields, method="POST", body=b"hello!"), must_close=True)


@_register(
    _S,
    "http10-te-closes",
    "RFC 9112 §6.1",
    "A server or client that receives an HTTP/1.0 message containing a Transfer-Encoding "
    "header field MUST treat the message as if the framing is faulty, even if a "
    "Content-Length is present, and close the connection after processing the message.",
)
def http10_te_closes(t: ServerTarget) -> Outcome:
    fields = [("Connection", "keep-alive"), ("Transfer-Encoding", "chunked")]
    fields.append(("Content-Length", "5"))
    data = t.req(fields, method="POST", version="HTTP/1.0", body=b"0\r\n\r\n")
    with t.wire() as w:
        w.send(data)
        try:
            resp = w.read_response("POST")
        except WireError as exc:
            if exc.kind in ("closed", "reset"):
                return Verdict.PASS, f"no response, connection {exc.kind}"
            raise
        state = w.peer_state(t.settle)
    if state in (PeerState.CLOSED, PeerState.RESET):
        return Verdict.PASS, f"{resp.summary()}; then {state.value}"
    return Verdict.FAIL, f"{resp.summary()}; connection left {state.value}"


@_register(
    _S,
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


@_register(
    _S,
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
