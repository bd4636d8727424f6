"""Every error onehop raises for a protocol problem.

One base, :class:`ProtocolError`, split by whose fault it is:
:class:`RemoteProtocolError` (the peer sent something invalid; a server answers
with :attr:`~ProtocolError.status_hint`) and :class:`LocalProtocolError` (our
caller asked to send something invalid). Below those, one class per cause, so
callers can tell ``HeaderTooLarge`` from ``ConflictingFraming`` without reading
messages. This module imports nothing from onehop and is importable by all.
"""

from __future__ import annotations


class OnehopError(Exception):
    """Base of every exception onehop raises on purpose."""


class ProtocolError(OnehopError):
    """A message broke HTTP/1.x rules; the connection is no longer usable.

    ``status_hint`` is the status a server should answer with when the fault is
    the peer's (RFC 9112 §2.2: a malformed request gets 400 unless a more
    specific code applies).
    """

    status_hint: int = 400

    def __init__(self, msg: str, status_hint: int | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        if status_hint is not None:
            self.status_hint = status_hint


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not valid HTTP/1.x."""


class LocalProtocolError(ProtocolError):
    """Our caller asked to send something that is not valid HTTP/1.x."""

    status_hint = 500


# --- remote causes -----------------------------------------------------------------------------


class BadStartLine(RemoteProtocolError):
    """The request-line or status-line is malformed (RFC 9112 §3, §4)."""


class UnsupportedVersion(RemoteProtocolError):
    """The message uses an HTTP major version we do not speak (RFC 9110 §15.6.6)."""

    status_hint = 505


class InvalidRequestTarget(RemoteProtocolError):
    """The request-target is not of a form allowed for the method (RFC 9112 §3.2)."""


class URITooLong(RemoteProtocolError):
    """The request-line exceeds the configured line limit (RFC 9112 §3)."""

    status_hint = 414


class HeaderTooLarge(RemoteProtocolError):
    """The head, one field line, or the number of fields exceeds its limit (RFC 6585 §5)."""

    status_hint = 431


class ObsFold(RemoteProtocolError):
    """A field line starts with whitespace: obsolete line folding (RFC 9112 §5.2)."""


class BareCR(RemoteProtocolError):
    """A CR not followed by LF outside of content (RFC 9112 §2.2)."""


class BareLF(RemoteProtocolError):
    """A LF used as a line terminator without its CR (RFC 9112 §2.2)."""


class WhitespaceBeforeColon(RemoteProtocolError):
    """Whitespace between a field name and its colon (RFC 9112 §5.1)."""


class InvalidFieldName(RemoteProtocolError):
    """A field name is not a token (RFC 9110 §5.1)."""


class InvalidFieldValue(RemoteProtocolError):
    """A field value holds a NUL or control octet (RFC 9110 §5.5)."""


class InvalidConnectionHeader(RemoteProtocolError):
    """A Connection member is not a token (RFC 9110 §7.6.1, §5.6.1)."""


class ConflictingFraming(RemoteProtocolError):
    """Transfer-Encoding and Content-Length together, or TE in HTTP/1.0 (RFC 9112 §6.1, §6.3)."""


class InvalidContentLength(RemoteProtocolError):
    """A Content-Length that is malformed or disagrees with another (RFC 9112 §6.3)."""


class UnsupportedTransferCoding(RemoteProtocolError):
    """A transfer coding other than ``chunked`` (RFC 9112 §6.1: answer 501)."""

    status_hint = 501


class ChunkedNotLast(RemoteProtocolError):
    """``chunked`` is not the final transfer coding, or is applied twice (RFC 9112 §6.1)."""


class InvalidChunk(RemoteProtocolError):
    """A chunk-size line, chunk terminator or extension is malformed (RFC 9112 §7.1)."""


class ChunkExtensionTooLong(RemoteProtocolError):
    """A chunk's extensions exceed the configured limit (RFC 9112 §7.1.1)."""


class TrailerTooLarge(RemoteProtocolError):
    """The trailer section exceeds the configured limit (RFC 9112 §7.1.2)."""

    status_hint = 431


class BodyTooLarge(RemoteProtocolError):
    """The content exceeds the configured body limit (RFC 9110 §15.5.14)."""

    status_hint = 413


class MissingHost(RemoteProtocolError):
    """An HTTP/1.1 request without a Host field (RFC 9112 §3.2)."""


class DuplicateHost(RemoteProtocolError):
    """A request with more than one Host field line (RFC 9112 §3.2)."""


class InvalidHost(RemoteProtocolError):
    """A Host field value that is not ``uri-host [":" port]`` (RFC 9112 §3.2)."""


class IncompleteMessage(RemoteProtocolError):
    """The peer closed the connection in the middle of a message (RFC 9112 §8)."""


class UnexpectedResponse(RemoteProtocolError):
    """A response arrived with no request outstanding, or a 1xx we cannot accept."""


# --- local causes ------------------------------------------------------------------------------


class HopByHopInHeaders(LocalProtocolError):
    """A hop-by-hop field was passed as an end-to-end header (RFC 9110 §7.6.1)."""


class InvalidHeaderToSend(LocalProtocolError):
    """A field name or value we were asked to send is not valid (RFC 9110 §5)."""


class FramingMismatch(LocalProtocolError):
    """The body sent does not match the framing announced in the head (RFC 9112 §6)."""


class InvalidSendState(LocalProtocolError):
    """The event cannot be sent now: wrong order, or the connection is closing (RFC 9112 §9.6)."""


class InvalidMessageToSend(LocalProtocolError):
    """A start line we were asked to send is invalid (method, target, status, version)."""


class ClientDisconnected(OnehopError, OSError):
    """The client is gone: what an ASGI app's ``send`` raises after a disconnect (ASGI
    spec 2.4: "a server-specific subclass of OSError"), so a streaming app stops."""
