"""When a failed request may be sent again: one pure function, no I/O.

RFC 9112 §9.3.1: "A user agent MUST NOT automatically retry a request with a
non-idempotent method unless it has some means to know that the request
semantics are actually idempotent, regardless of the method, or some means to
detect that the original request was never applied." RFC 9110 §9.2.2 names the
idempotent methods. We resend only what went out on a *reused* connection (a
fresh connection that fails is a real failure, not the keep-alive race), only
when no response byte arrived (after that the server has answered, or is
answering, and a resend could apply the request twice), and only when the body
can be produced again.

:func:`onehop.client.exchange.should_resend` applies these rules to a typed
error; :func:`is_retry_safe` states them over counters, for callers that have
no error type to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

#: RFC 9110 §9.2.2: PUT, DELETE and the safe methods (§9.2.1) are idempotent.
IDEMPOTENT_METHODS: Final = frozenset(
    {b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"}
)
_CONSENT_FIELD: Final = b"idempotency-key"


def _b(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def is_idempotent_request(
    method: bytes | str, headers: Iterable[tuple[bytes | str, bytes | str]]
) -> bool:
    """Whether sending the request twice has the effect of sending it once, as far as
    the client can know: an idempotent method (RFC 9110 §9.2.2), or an
    ``Idempotency-Key`` field by which the caller says so. Method names are
    case-sensitive (RFC 9110 §9.1): ``get`` is not ``GET``.
    """
    if _b(method) in IDEMPOTENT_METHODS:
        return True
    return any(_b(name).lower() == _CONSENT_FIELD for name, _ in headers)


def is_retry_safe(
    method: bytes | str,
    headers: Iterable[tuple[bytes | str, bytes | str]],
    reused: bool,
    bytes_received: int,
    body_replayable: bool,
) -> bool:
    """Whether a request that failed may be sent once more on a fresh connection.

    True only when all hold: the connection was *reused* (the server may have
    closed it while idle, RFC 9112 §9.3.1 / §9.6), *bytes_received* is 0 (no
    part of a response came back), the body is replayable, and the method is
    idempotent (RFC 9110 §9.2.2) or the caller consented with an
    ``Idempotency-Key`` field (the caller knows the request is idempotent).
    Method names are case-sensitive (RFC 9110 §9.1): ``get`` is not ``GET``.
    """
    if not reused or bytes_received or not body_replayable:
        return False
    return is_idempotent_request(method, headers)
