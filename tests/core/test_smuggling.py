"""A corpus of malformed and ambiguous messages: request smuggling and parser confusion.

Every case names the exact error class and ``status_hint`` the engine must raise, and is
fed twice: whole, and one byte at a time. Both ways must raise the same class, and (unless
the case says ``eof=True``) before end of stream: a strict parser rejects the message as
soon as the fault is visible instead of waiting for bytes that may never come.

Case ids end with the RFC section they exercise (RFC 9112 unless marked ``9110``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from onehop.core import (
    DEFAULT_LIMITS,
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    EndOfMessage,
    Limits,
    Request,
    Role,
)
from onehop.errors import (
    BadStartLine,
    BareCR,
    BareLF,
    BodyTooLarge,
    ChunkedNotLast,
    ChunkExtensionTooLong,
    ConflictingFraming,
    DuplicateHost,
    HeaderTooLarge,
    IncompleteMessage,
    InvalidChunk,
    InvalidConnectionHeader,
    InvalidContentLength,
    InvalidFieldName,
    InvalidFieldValue,
    InvalidHost,
    InvalidRequestTarget,
    MissingHost,
    ObsFold,
    RemoteProtocolError,
    TrailerTooLarge,
    UnexpectedResponse,
    UnsupportedTransferCoding,
    UnsupportedVersion,
    URITooLong,
    WhitespaceBeforeColon,
)

H = b"Host: example.com\r\n"
POST = b"POST / HTTP/1.1\r\n" + H
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\n"
OK_CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"


@dataclass(frozen=True)
class Case:
    """One malformed message and the error it must raise."""

    id: str
    data: bytes
    error: type[RemoteProtocolError]
    status: int
    role: Role = Role.SERVER
    eof: bool = False
    limits: Limits = field(default=DEFAULT_LIMITS)


def req(case_id: str, data: bytes, error: type[RemoteProtocolError], status: int = 400,
        **kw: object) -> Case:
    return Case(case_id, data, error, status, Role.SERVER, **kw)  # type: ignore[arg-type]


def resp(case_id: str, data: bytes, error: type[RemoteProtocolError], status: int = 400,
         **kw: object) -> Case:
    return Case(case_id, data, error, status, Role.CLIENT, **kw)  # type: ignore[arg-type]


CASES: list[Case] = [
    # --- request-line (RFC 9112 §2.3, §3; RFC 9110 §2.5) ------------------------------------
    req("http2.0-version-rfc9112-2.3", b"GET / HTTP/2.0\r\n" + H + b"\r\n",
        UnsupportedVersion, 505),
    req("http0.9-version-rfc9112-2.3", b"GET / HTTP/0.9\r\n" + H + b"\r\n",
        UnsupportedVersion, 505),
    req("http3.1-version-rfc9112-2.3", b"GET / HTTP/3.1\r\n" + H + b"\r\n",
        UnsupportedVersion, 505),
    req("lowercase-http-name-rfc9112-2.3", b"GET / http/1.1\r\n" + H + b"\r\n", BadStartLine),
    req("two-digit-minor-rfc9112-2.3", b"GET / HTTP/1.10\r\n" + H + b"\r\n", BadStartLine),
    req("version-without-dot-rfc9112-2.3", b"GET / HTTP/11\r\n" + H + b"\r\n", BadStartLine),
    req("http0.9-simple-request-rfc9112-3", b"GET /\r\n\r\n", BadStartLine),
    req("double-space-after-method-rfc9112-3", b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
        BadStartLine),
    req("tab-separator-rfc9112-3", b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", BadStartLine),
    req("trailing-space-after-version-rfc9112-3", b"GET / HTTP/1.1 \r\n" + H + b"\r\n",
        BadStartLine),
    req("leading-space-before-method-rfc9112-3", b" GET / HTTP/1.1\r\n" + H + b"\r\n",
        BadStartLine),
    req("non-token-method-rfc9112-3", b"G(T / HTTP/1.1\r\n" + H + b"\r\n", BadStartLine),
    req("space-in-target-rfc9112-3", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", BadStartLine),
    req("nul-in-target-rfc9112-3", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", BadStartLine),
    req("request-line-too-long-rfc9112-3", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H
        + b"\r\n", URITooLong, 414),
    # A bad request-line is refused once its CRLF is in, with the head still incomplete
    # (no blank line yet): waiting for the rest would end in a 408 instead (issue 12).
    req("nul-in-version-head-incomplete-rfc9112-3", b"GET /x HTTP/1.\x001\r\nHost: h\r\n\r",
        BadStartLine),
    req("junk-before-version-head-incomplete-rfc9112-3",
        b"GET /c1686 ;HTTP/1.9\r\nHost: h\r\n", BadStartLine),
    req("http2-version-head-incomplete-rfc9112-2.3", b"GET / HTTP/2.0\r\n", UnsupportedVersion,
        505),
    req("absolute-form-no-slashes-head-incomplete-rfc9110-4.2.1", b"GET http:admin HTTP/1.1\r\n",
        InvalidRequestTarget),
    # --- absolute-form targets of the http(s) scheme (RFC 9112 §3.2.2; RFC 9110 §4.2) -------
    req("absolute-form-one-slash-rfc9110-4.2.1", b"GET http:/admin HTTP/1.1\r\n" + H + b"\r\n",
        InvalidRequestTarget),
    req("absolute-form-no-authority-rfc9110-4.2.1", b"GET http:admin HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("absolute-form-empty-host-rfc9110-4.2.1", b"GET http:///x HTTP/1.1\r\n" + H + b"\r\n",
        InvalidRequestTarget),
    req("absolute-form-port-only-rfc9110-4.2.1", b"GET http://:80/x HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("absolute-form-two-ports-rfc3986-3.2.3", b"GET http://h:8:0/x HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("absolute-form-port-too-big-rfc3986-3.2.3", b"GET http://h:65536/x HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("absolute-form-userinfo-rfc9110-4.2.4", b"GET http://user:pw@h/x HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("absolute-form-empty-userinfo-rfc9110-4.2.4", b"GET http://@h/x HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("absolute-form-unclosed-ipv6-rfc3986-3.2.2", b"GET http://[::1/x HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("absolute-form-bad-percent-host-rfc3986-3.2.2", b"GET http://h%zz/x HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("https-absolute-form-no-host-rfc9110-4.2.2", b"GET https:/x HTTP/1.1\r\n" + H + b"\r\n",
        InvalidRequestTarget),
    # --- line terminators (RFC 9112 §2.2) ---------------------------------------------------
    req("bare-lf-ends-request-line-rfc9112-2.2", b"GET / HTTP/1.1\n" + H + b"\r\n", BareLF),
    req("bare-lf-ends-field-line-rfc9112-2.2", b"GET / HTTP/1.1\r\nHost: example.com\n"
        b"X-A: 1\r\n\r\n", BareLF),
    req("bare-lf-as-blank-line-rfc9112-2.2", b"GET / HTTP/1.1\r\n" + H + b"\n", BareLF),
    req("all-bare-lf-rfc9112-2.2", b"GET / HTTP/1.1\nHost: example.com\n\n", BareLF),
    req("bare-cr-ends-request-line-rfc9112-2.2", b"GET / HTTP/1.1\r" + H + b"\r\n", BareCR),
    req("bare-cr-in-field-value-rfc9112-2.2", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n",
        BareCR),
    req("cr-cr-lf-line-end-rfc9112-2.2", b"GET / HTTP/1.1\r\nHost: example.com\r\r\n\r\n",
        BareCR),
    # --- field syntax (RFC 9112 §5.1, §5.2; RFC 9110 §5.1, §5.5) ----------------------------
    req("obs-fold-space-rfc9112-5.2", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n 2\r\n\r\n",
        ObsFold),
    req("obs-fold-tab-rfc9112-5.2", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n\t2\r\n\r\n",
        ObsFold),
    req("whitespace-before-first-field-rfc9112-2.2",
        b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + H + b"\r\n0\r\n\r\n", ObsFold),
    req("space-before-colon-rfc9112-5.1", b"GET / HTTP/1.1\r\nHost : example.com\r\n\r\n",
        WhitespaceBeforeColon),
    req("tab-before-colon-rfc9112-5.1", b"GET / HTTP/1.1\r\n" + H + b"X-A\t: 1\r\n\r\n",
        WhitespaceBeforeColon),
    req("space-in-field-name-rfc9110-5.1", b"GET / HTTP/1.1\r\n" + H + b"X A: 1\r\n\r\n",
        InvalidFieldName),
    req("non-token-field-name-rfc9110-5.1", b"GET / HTTP/1.1\r\n" + H + b"X(A): 1\r\n\r\n",
        InvalidFieldName),
    req("nul-in-field-name-rfc9110-5.1", b"GET / HTTP/1.1\r\n" + H + b"X\x00A: 1\r\n\r\n",
        InvalidFieldName),
    req("empty-field-name-rfc9110-5.1", b"GET / HTTP/1.1\r\n" + H + b": 1\r\n\r\n",
        InvalidFieldName),
    req("field-line-without-colon-rfc9112-5", b"GET / HTTP/1.1\r\n" + H + b"X-A 1\r\n\r\n",
        InvalidFieldName),
    req("nul-in-field-value-rfc9110-5.5", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
        InvalidFieldValue),
    req("ctl-in-field-value-rfc9110-5.5", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n",
        InvalidFieldValue),
    req("del-in-field-value-rfc9110-5.5", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n",
        InvalidFieldValue),
    req("non-token-connection-option-rfc9110-7.6.1", b"GET / HTTP/1.1\r\n" + H
        + b"Connection: close, \"x\"\r\n\r\n", InvalidConnectionHeader),
    # --- Host and request-target (RFC 9112 §3.2) --------------------------------------------
    req("missing-host-http1.1-rfc9112-3.2", b"GET / HTTP/1.1\r\n\r\n", MissingHost),
    req("duplicate-host-rfc9112-3.2", b"GET / HTTP/1.1\r\n" + H + b"Host: evil.example\r\n\r\n",
        DuplicateHost),
    req("duplicate-identical-host-rfc9112-3.2", b"GET / HTTP/1.1\r\n" + H + H + b"\r\n",
        DuplicateHost),
    req("duplicate-host-http1.0-rfc9112-3.2", b"GET / HTTP/1.0\r\n" + H + H + b"\r\n",
        DuplicateHost),
    req("host-with-space-rfc9112-3.2", b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n",
        InvalidHost),
    req("host-with-userinfo-rfc9112-3.2", b"GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n",
        InvalidHost),
    req("host-with-path-rfc9112-3.2", b"GET / HTTP/1.1\r\nHost: example.com/x\r\n\r\n",
        InvalidHost),
    req("host-bad-percent-encoding-rfc9112-3.2", b"GET / HTTP/1.1\r\nHost: exa%zzmple.com\r\n"
        b"\r\n", InvalidHost),
    req("host-with-two-ports-rfc9112-3.2", b"GET / HTTP/1.1\r\nHost: example.com:80:81\r\n\r\n",
        InvalidHost),
    req("connect-origin-form-rfc9112-3.2.3", b"CONNECT / HTTP/1.1\r\n" + H + b"\r\n",
        InvalidRequestTarget),
    req("connect-without-port-rfc9112-3.2.3", b"CONNECT example.com HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("connect-bad-percent-encoding-rfc9112-3.2.3", b"CONNECT a%zz:443 HTTP/1.1\r\n" + H
        + b"\r\n", InvalidRequestTarget),
    req("asterisk-with-get-rfc9112-3.2.4", b"GET * HTTP/1.1\r\n" + H + b"\r\n",
        InvalidRequestTarget),
    req("fragment-in-origin-form-rfc9112-3.2.1", b"GET /a#frag HTTP/1.1\r\n" + H + b"\r\n",
        InvalidRequestTarget),
    req("fragment-in-absolute-form-rfc9112-3.2.2", b"GET http://example.com/#f HTTP/1.1\r\n"
        + H + b"\r\n", InvalidRequestTarget),
    req("relative-path-target-rfc9112-3.2", b"GET a/b HTTP/1.1\r\n" + H + b"\r\n",
        InvalidRequestTarget),
    # --- CL.TE / TE.CL / TE.TE (RFC 9112 §6.1, §6.3) ----------------------------------------
    req("CL.TE-rfc9112-6.3", POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nG", ConflictingFraming),
    req("TE.CL-rfc9112-6.3", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b"8\r\nSMUGGLED\r\n0\r\n\r\n", ConflictingFraming),
    req("TE-xchunked-rfc9112-6.1", POST + b"Transfer-Encoding: xchunked\r\n\r\n",
        UnsupportedTransferCoding, 501),
    req("TE-xchunked-with-CL-rfc9112-6.3", POST + b"Transfer-Encoding: xchunked\r\n"
        b"Content-Length: 5\r\n\r\n", ConflictingFraming),
    req("TE-chunked-chunked-rfc9112-6.1", POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n",
        ChunkedNotLast),
    req("TE-chunked-on-two-lines-rfc9112-6.1", POST + b"Transfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n", ChunkedNotLast),
    req("TE-gzip-chunked-rfc9112-6.1", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        UnsupportedTransferCoding, 501),
    req("TE-chunked-then-bogus-line-rfc9112-6.1", POST + b"Transfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: cow\r\n\r\n", UnsupportedTransferCoding, 501),
    req("TE-identity-rfc9112-6.1", POST + b"Transfer-Encoding: identity\r\n\r\n",
        UnsupportedTransferCoding, 501),
    req("TE-quoted-chunked-rfc9112-6.1", POST + b'Transfer-Encoding: "chunked"\r\n\r\n',
        UnsupportedTransferCoding, 501),
    req("TE-chunked-vtab-rfc9110-5.5", POST + b"Transfer-Encoding: chunked\x0b\r\n\r\n",
        InvalidFieldValue),
    req("TE-empty-rfc9112-6.1", POST + b"Transfer-Encoding: \r\n\r\n", ChunkedNotLast),
    req("TE-space-before-colon-rfc9112-5.1", POST + b"Transfer-Encoding : chunked\r\n\r\n",
        WhitespaceBeforeColon),
    req("TE-tab-before-colon-rfc9112-5.1", POST + b"Transfer-Encoding\t: chunked\r\n\r\n",
        WhitespaceBeforeColon),
    req("TE-leading-space-line-rfc9112-5.2", POST + b"X-A: 1\r\n Transfer-Encoding: chunked"
        b"\r\n\r\n", ObsFold),
    req("TE-leading-tab-line-rfc9112-5.2", POST + b"X-A: 1\r\n\tTransfer-Encoding: chunked"
        b"\r\n\r\n", ObsFold),
    req("TE-folded-value-rfc9112-5.2", POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n",
        ObsFold),
    req("TE-in-http1.0-rfc9112-6.1", b"POST / HTTP/1.0\r\n" + H
        + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ConflictingFraming),
    # --- Content-Length (RFC 9112 §6.3; RFC 9110 §8.6) --------------------------------------
    req("CL-differing-lines-rfc9112-6.3", POST + b"Content-Length: 5\r\nContent-Length: 6"
        b"\r\n\r\nhello!", InvalidContentLength),
    req("CL-differing-list-rfc9112-6.3", POST + b"Content-Length: 5, 6\r\n\r\nhello!",
        InvalidContentLength),
    req("CL-plus-sign-rfc9110-8.6", POST + b"Content-Length: +5\r\n\r\nhello",
        InvalidContentLength),
    req("CL-negative-rfc9110-8.6", POST + b"Content-Length: -1\r\n\r\n", InvalidContentLength),
    req("CL-hex-rfc9110-8.6", POST + b"Content-Length: 0x10\r\n\r\n", InvalidContentLength),
    req("CL-underscore-rfc9110-8.6", POST + b"Content-Length: 1_0\r\n\r\n",
        InvalidContentLength),
    req("CL-inner-space-rfc9110-8.6", POST + b"Content-Length: 1 0\r\n\r\n",
        InvalidContentLength),
    req("CL-exponent-rfc9110-8.6", POST + b"Content-Length: 1e3\r\n\r\n", InvalidContentLength),
    req("CL-empty-rfc9110-8.6", POST + b"Content-Length: \r\n\r\n", InvalidContentLength),
    req("CL-20-digits-rfc9112-6.3", POST + b"Content-Length: 99999999999999999999\r\n\r\n",
        InvalidContentLength),
    req("CL-over-body-limit-rfc9110-15.5.14", POST + b"Content-Length: 11\r\n\r\n",
        BodyTooLarge, 413, limits=Limits(max_body_size=10)),
    req("CL-truncated-body-at-eof-rfc9112-8", POST + b"Content-Length: 10\r\n\r\nabc",
        IncompleteMessage, eof=True),
    # --- chunked coding (RFC 9112 §7.1) -----------------------------------------------------
    req("chunk-size-0x-prefix-rfc9112-7.1", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n",
        InvalidChunk),
    req("chunk-size-trailing-space-rfc9112-7.1", CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n",
        InvalidChunk),
    req("chunk-size-negative-rfc9112-7.1", CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n",
        InvalidChunk),
    req("chunk-size-empty-rfc9112-7.1", CHUNKED + b"\r\nhello\r\n0\r\n\r\n", InvalidChunk),
    req("chunk-size-17-hex-digits-rfc9112-7.1", CHUNKED + b"10000000000000005\r\nhello\r\n",
        InvalidChunk),
    req("chunk-size-2000-hex-digits-rfc9112-7.1", CHUNKED + b"1" * 2000 + b"\r\nhello\r\n",
        InvalidChunk),
    req("chunk-size-bare-lf-rfc9112-7.1", CHUNKED + b"5\nhello\r\n0\r\n\r\n", BareLF),
    req("chunk-size-bare-cr-rfc9112-7.1", CHUNKED + b"5\rhello\r\n0\r\n\r\n", InvalidChunk),
    req("chunk-size-0X-prefix-rfc9112-7.1", CHUNKED + b"0X5\r\nhello\r\n0\r\n\r\n",
        InvalidChunk),
    req("chunk-data-no-crlf-rfc9112-7.1", CHUNKED + b"5\r\nhelloX\r\n0\r\n\r\n", InvalidChunk),
    req("chunk-data-bare-lf-rfc9112-7.1", CHUNKED + b"5\r\nhello\n0\r\n\r\n", InvalidChunk),
    req("chunk-data-longer-than-size-rfc9112-7.1", CHUNKED + b"3\r\nhello\r\n0\r\n\r\n",
        InvalidChunk),
    req("chunk-ext-missing-name-rfc9112-7.1.1", CHUNKED + b"5;\r\nhello\r\n0\r\n\r\n",
        InvalidChunk),
    req("chunk-ext-bad-value-rfc9112-7.1.1", CHUNKED + b"5;a=b c\r\nhello\r\n0\r\n\r\n",
        InvalidChunk),
    req("chunk-ext-unterminated-quote-rfc9112-7.1.1", CHUNKED + b'5;a="b\r\nhello\r\n0\r\n\r\n',
        InvalidChunk),
    req("chunk-ext-too-long-rfc9112-7.1.1", CHUNKED + b"5;a=" + b"b" * 2000
        + b"\r\nhello\r\n0\r\n\r\n", ChunkExtensionTooLong),
    req("chunked-over-body-limit-rfc9110-15.5.14", CHUNKED + b"b\r\nhello world\r\n0\r\n\r\n",
        BodyTooLarge, 413, limits=Limits(max_body_size=10)),
    req("chunked-missing-last-chunk-at-eof-rfc9112-7.1", CHUNKED + b"5\r\nhello\r\n",
        IncompleteMessage, eof=True),
    req("trailer-obs-fold-rfc9112-7.1.2", CHUNKED + b"0\r\nX-T: 1\r\n 2\r\n\r\n", ObsFold),
    req("trailer-bare-lf-rfc9112-7.1.2", CHUNKED + b"0\r\nX-T: 1\nX-U: 2\r\n\r\n", BareLF),
    req("trailer-space-before-colon-rfc9112-7.1.2", CHUNKED + b"0\r\nX-T : 1\r\n\r\n",
        WhitespaceBeforeColon),
    req("trailer-nul-in-value-rfc9112-7.1.2", CHUNKED + b"0\r\nX-T: a\x00b\r\n\r\n",
        InvalidFieldValue),
    req("trailer-too-large-rfc9112-7.1.2", CHUNKED + b"0\r\nX-T: " + b"a" * 9000 + b"\r\n\r\n",
        TrailerTooLarge, 431),
    req("trailer-too-many-bytes-rfc9112-7.1.2", CHUNKED + b"0\r\n"
        + b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 40) for i in range(250)) + b"\r\n",
        TrailerTooLarge, 431),
    # --- size limits (RFC 9112 §3, RFC 6585 §5) ---------------------------------------------
    req("too-many-fields-rfc6585-5", b"GET / HTTP/1.1\r\n" + H
        + b"".join(b"X-F%d: 1\r\n" % i for i in range(101)) + b"\r\n", HeaderTooLarge, 431),
    req("head-too-large-rfc6585-5", b"GET / HTTP/1.1\r\n" + H
        + b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 900) for i in range(40)) + b"\r\n",
        HeaderTooLarge, 431),
    req("field-line-too-long-rfc6585-5", b"GET / HTTP/1.1\r\n" + H + b"X-F: " + b"v" * 9000
        + b"\r\n\r\n", HeaderTooLarge, 431),
    req("truncated-head-at-eof-rfc9112-8", b"GET / HTTP/1.1\r\nHost: exa", IncompleteMessage,
        eof=True),
    # --- responses, parsed by a client (RFC 9112 §4, §6, §7) --------------------------------
    resp("resp-http2.0-rfc9112-4", b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
         UnsupportedVersion, 505),
    resp("resp-lowercase-http-rfc9112-4", b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         BadStartLine),
    resp("resp-two-digit-status-rfc9112-4", b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
         BadStartLine),
    resp("resp-bad-status-head-incomplete-rfc9112-4", b"HTTP/1.1 2000 OK\r\nX-A: 1\r\n",
         BadStartLine),
    resp("resp-four-digit-status-rfc9112-4", b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
         BadStartLine),
    resp("resp-status-below-100-rfc9110-15", b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
         BadStartLine),
    resp("resp-nul-in-reason-rfc9112-4", b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n",
         BadStartLine),
    resp("resp-bare-lf-status-line-rfc9112-2.2", b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
         BareLF),
    resp("resp-bare-cr-in-reason-rfc9112-2.2", b"HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n"
         b"\r\n", BareCR),
    resp("resp-status-line-too-long-rfc9112-4", b"HTTP/1.1 200 " + b"A" * 9000
         + b"\r\nContent-Length: 0\r\n\r\n", HeaderTooLarge, 431),
    resp("resp-obs-fold-rfc9112-5.2", OK + b"X-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n",
         ObsFold),
    resp("resp-CL.TE-rfc9112-6.3", OK + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"
         b"\r\n0\r\n\r\n", ConflictingFraming),
    resp("resp-CL-differing-rfc9112-6.3", OK + b"Content-Length: 5\r\nContent-Length: 7\r\n"
         b"\r\nhello", InvalidContentLength),
    resp("resp-CL-negative-rfc9110-8.6", OK + b"Content-Length: -1\r\n\r\n",
         InvalidContentLength),
    resp("resp-TE-gzip-rfc9112-6.1", OK + b"Transfer-Encoding: gzip\r\n\r\n",
         UnsupportedTransferCoding, 501),
    resp("resp-TE-in-http1.0-rfc9112-6.1", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked"
         b"\r\n\r\n0\r\n\r\n", ConflictingFraming),
    resp("resp-chunk-size-overflow-rfc9112-7.1", OK_CHUNKED + b"fffffffffffffffff\r\n",
         InvalidChunk),
    resp("resp-chunk-data-no-crlf-rfc9112-7.1", OK_CHUNKED + b"2\r\nhiX", InvalidChunk),
    resp("resp-trailer-too-large-rfc9112-7.1.2", OK_CHUNKED + b"0\r\nX-T: " + b"a" * 9000
         + b"\r\n\r\n", TrailerTooLarge, 431),
    resp("resp-101-without-upgrade-offer-rfc9110-15.2.2", b"HTTP/1.1 101 Switching Protocols"
         b"\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n", UnexpectedResponse),
    resp("resp-truncated-body-at-eof-rfc9112-8", OK + b"Content-Length: 10\r\n\r\nabc",
         IncompleteMessage, eof=True),
]


# Messages that look odd but are valid: the corpus above must not reject these.
VALID_REQUESTS: list[tuple[str, bytes]] = [
    ("absolute-form-rfc9112-3.2.2", b"GET http://example.com/a?b HTTP/1.1\r\n" + H + b"\r\n"),
    ("absolute-form-query-only-rfc9112-3.2.2", b"GET http://h?q=1 HTTP/1.1\r\n" + H + b"\r\n"),
    ("absolute-form-ipv6-port-rfc9112-3.2.2", b"GET http://[::1]:8080/x HTTP/1.1\r\n" + H
     + b"\r\n"),
    ("absolute-form-empty-port-rfc3986-3.2.3", b"GET http://h:/x HTTP/1.1\r\n" + H + b"\r\n"),
    ("absolute-form-percent-host-rfc3986-3.2.2", b"GET http://h%41b/%7Ex HTTP/1.1\r\n" + H
     + b"\r\n"),
    ("absolute-form-upper-scheme-rfc3986-3.1", b"GET HTTP://H/x HTTP/1.1\r\n" + H + b"\r\n"),
    ("absolute-form-other-scheme-rfc9112-3.2.2", b"GET ftp://h/x HTTP/1.1\r\n" + H + b"\r\n"),
    ("asterisk-form-options-rfc9112-3.2.4", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n"),
    ("connect-authority-form-rfc9112-3.2.3", b"CONNECT example.com:443 HTTP/1.1\r\n"
     b"Host: example.com:443\r\n\r\n"),
    ("leading-empty-line-rfc9112-2.2", b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    ("http1.0-without-host-rfc9112-3.2", b"GET / HTTP/1.0\r\n\r\n"),
    ("empty-host-rfc9110-7.2", b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
    ("ipv6-host-rfc9112-3.2", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
    ("CL-identical-lines-rfc9112-6.3", POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n"
     b"hello"),
    ("CL-identical-list-rfc9112-6.3", POST + b"Content-Length: 5, 5\r\n\r\nhello"),
    ("TE-mixed-case-rfc9112-6.1", POST + b"Transfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n"),
    ("TE-ows-tabs-rfc9112-5.1", POST + b"Transfer-Encoding:\t chunked \t\r\n\r\n0\r\n\r\n"),
    ("chunk-ext-valid-rfc9112-7.1.1", CHUNKED + b'5 ; a = b ;c="d \\" e"\r\nhello\r\n0\r\n\r\n'),
    ("chunk-size-leading-zeros-rfc9112-7.1", CHUNKED + b"000000000000000000005\r\nhello\r\n"
     b"0\r\n\r\n"),
    ("chunk-size-uppercase-hex-rfc9112-7.1", CHUNKED + b"A\r\nhelloworld\r\n0\r\n\r\n"),
    ("trailers-rfc9112-7.1.2", CHUNKED + b"0\r\nX-T: 1\r\n\r\n"),
]


def _connection(role: Role, limits: Limits = DEFAULT_LIMITS) -> Connection:
    """A server, or a client that has sent a GET and awaits its response."""
    conn = Connection(role, limits=limits)
    if role is Role.CLIENT:
        conn.send(Request(b"GET", b"/", [(b"Host", b"example.com")]))
        conn.send(EndOfMessage())
    return conn


def _drain(conn: Connection, bound: int) -> None:
    """Pull events until the engine needs data or pauses; fail rather than loop forever."""
    for _ in range(bound):
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED or isinstance(event, ConnectionClosed):
            return
    pytest.fail(f"next_event() produced {bound} events without asking for data")


def _feed(case: Case, pieces: Iterable[bytes]) -> RemoteProtocolError | None:
    """Feed *pieces* (then EOF if the case needs it); return the error raised, if any."""
    conn = _connection(case.role, case.limits)
    bound = len(case.data) + 16
    try:
        for piece in pieces:
            conn.receive_data(piece)
            _drain(conn, bound)
        if case.eof:
            conn.receive_data(b"")
            _drain(conn, bound)
    except RemoteProtocolError as exc:
        # The error is sticky: the connection is dead and says so again.
        with pytest.raises(type(exc)):
            conn.next_event()
        return exc
    return None


def _check(case: Case, error: RemoteProtocolError | None) -> None:
    when = "at EOF" if case.eof else "before EOF"
    assert error is not None, f"no error raised {when}; expected {case.error.__name__}"
    assert type(error) is case.error, f"{type(error).__name__}: {error}"
    assert error.status_hint == case.status


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_rejected_when_fed_whole(case: Case) -> None:
    _check(case, _feed(case, [case.data]))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_rejected_when_fed_one_byte_at_a_time(case: Case) -> None:
    data = case.data
    _check(case, _feed(case, [data[i : i + 1] for i in range(len(data))]))


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 50
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("data", [pytest.param(d, id=i) for i, d in VALID_REQUESTS])
def test_valid_lookalikes_are_accepted(data: bytes) -> None:
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
        conn = Connection(Role.SERVER)
        got = []
        for piece in pieces:
            conn.receive_data(piece)
            while (event := conn.next_event()) is not NEED_DATA and event is not PAUSED:
                got.append(event)
        assert isinstance(got[0], Request)
        assert isinstance(got[-1], EndOfMessage)
        assert not conn.buffered


def _line(length: int) -> bytes:
    """A request-line of exactly *length* bytes."""
    return b"GET /" + b"a" * (length - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"


def _status_line(length: int) -> bytes:
    return b"HTTP/1.1 200 " + b"A" * (length - len(b"HTTP/1.1 200 "))


_MAX_LINE = DEFAULT_LIMITS.max_line_size

# (id, role, bytes, expected outcome): messages at a limit's edge. The verdict is a property of
# the bytes, so it must not change with how they are split into reads (RFC 9112 §2.2, §3, §7.1).
BOUNDARIES: list[tuple[str, Role, bytes, str]] = [
    ("request-line-at-limit-minus-1-rfc9112-3", Role.SERVER,
     _line(_MAX_LINE - 1) + b"\r\n" + H + b"\r\n", "ok"),
    ("request-line-at-limit-rfc9112-3", Role.SERVER, _line(_MAX_LINE) + b"\r\n" + H + b"\r\n",
     "ok"),
    ("request-line-over-limit-rfc9112-3", Role.SERVER,
     _line(_MAX_LINE + 1) + b"\r\n" + H + b"\r\n", "URITooLong"),
    ("status-line-at-limit-rfc9112-4", Role.CLIENT,
     _status_line(_MAX_LINE) + b"\r\nContent-Length: 0\r\n\r\n", "ok"),
    ("status-line-over-limit-rfc9112-4", Role.CLIENT,
     _status_line(_MAX_LINE + 1) + b"\r\nContent-Length: 0\r\n\r\n", "HeaderTooLarge"),
    ("chunk-size-2000-leading-zeros-rfc9112-7.1", Role.SERVER,
     CHUNKED + b"0" * 2000 + b"5\r\nhello\r\n0\r\n\r\n", "same-either-way"),
]


def _outcome(role: Role, pieces: list[bytes]) -> str:
    conn = _connection(role)
    try:
        for piece in pieces:
            conn.receive_data(piece)
            _drain(conn, 100_000)
    except RemoteProtocolError as exc:
        return type(exc).__name__
    return "ok" if conn.their_state.name != "BODY" and not conn.buffered else "incomplete"


@pytest.mark.parametrize(
    ("role", "data", "expected"), [pytest.param(r, d, e, id=i) for i, r, d, e in BOUNDARIES]
)
def test_verdict_at_a_limit_does_not_depend_on_segmentation(
    role: Role, data: bytes, expected: str
) -> None:
    first_line = data.index(b"\r\n") + 2
    whole = _outcome(role, [data])
    after_first_line = _outcome(role, [data[:first_line], data[first_line:]])
    one_byte = _outcome(role, [data[i : i + 1] for i in range(len(data))])
    if expected != "same-either-way":
        assert whole == expected
    assert (after_first_line, one_byte) == (whole, whole)
