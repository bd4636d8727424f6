"""Origin-server checks on message framing and malformed input: requests the server must
answer with 400 (and close after), bodiless responses (HEAD, 204, 304) and
Transfer-Encoding with HTTP/1.0 (RFC 9112 §2-§6, RFC 9110 §15).

Each check is a :class:`~onehop.probe.checks.Check` made by ``as_check``;
``server_checks`` lists them, with ``server_connection``'s, in the order they run.
"""

from __future__ import annotations

import time

from onehop.probe.checks import Outcome, Verdict, as_check
from onehop.probe.server_target import ServerTarget, _once
from onehop.probe.wire import PeerState, Response, Wire, WireError, request


@as_check(
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


@as_check(
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


@as_check(
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
    return _closes_after_post(t, data)


@as_check(
    "bad-cl-400-close",
    "RFC 9112 §6.3",
    "If the unrecoverable error is in a request message, the server MUST respond with a 400 "
    "(Bad Request) status code and then close the connection.",
)
def bad_content_length(t: ServerTarget) -> Outcome:
    data = t.req([("Content-Length", "5x")], method="POST", body=b"hello")
    return _malformed(t, data, must_close=True)


@as_check(
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


@as_check(
    "missing-host-400",
    "RFC 9112 §3.2",
    "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request "
    "message that lacks a Host header field [...]",
)
def missing_host(t: ServerTarget) -> Outcome:
    return _malformed(t, request("GET", t.path, ""), must_close=False)


@as_check(
    "double-host-400",
    "RFC 9112 §3.2",
    "A server MUST respond with a 400 (Bad Request) status code to [...] any request message "
    "that contains more than one Host header field line [...]",
)
def double_host(t: ServerTarget) -> Outcome:
    return _malformed(t, t.req([("Host", "other.invalid")]), must_close=False)


#: How long a server may take to answer a complete bad request-line (it has every byte it needs).
_EARLY: float = 2.0


@as_check(
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


@as_check(
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


@as_check(
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


@as_check(
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


@as_check(
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


@as_check(
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


@as_check(
    "space-before-colon-400",
    "RFC 9112 §5.1",
    "A server MUST reject, with a response status code of 400 (Bad Request), any received "
    "request message that contains whitespace between a header field name and colon.",
)
def space_before_colon(t: ServerTarget) -> Outcome:
    data = t.req().replace(b"\r\n\r\n", b"\r\nX-Probe : 1\r\n\r\n", 1)
    return _malformed(t, data, must_close=False)


@as_check(
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


@as_check(
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
    return _closes_after_post(t, data)


def _closes_after_post(t: ServerTarget, data: bytes) -> Outcome:
    """Send a POST whose framing is faulty; pass if the connection closes after the
    answer (or with none), whatever the status."""
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
