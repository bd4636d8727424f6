"""Whether a connection persists after the current message (RFC 9112 §9.3).

One function, :func:`persists_after`, used by the reader (to decide when to
stop parsing), the writer (to decide between ``close`` and ``keep-alive``), and
by server, client and proxy, so the rule cannot drift between them.
"""

from __future__ import annotations


def persists_after(
    http_version: bytes,
    options: frozenset[bytes],
    *,
    is_request: bool,
    intermediary: bool = False,
    honor_http10_keep_alive: bool = True,
) -> bool:
    """Apply RFC 9112 §9.3 to one received message.

    - "If the "close" connection option is present ..., the connection will not
      persist after the current response; else,
    - If the received protocol is HTTP/1.1 (or later), the connection will persist ...; else,
    - If the received protocol is HTTP/1.0, the "keep-alive" connection option is
      present, either the recipient is not a proxy or the message is a response,
      and the recipient wishes to honor the HTTP/1.0 "keep-alive" mechanism, the
      connection will persist ...; otherwise,
    - The connection will close after the current response."

    *intermediary* is true when the recipient is a proxy: then an HTTP/1.0
    request never yields persistence (also RFC 7230 §6.3 / §A.1.2).
    """
    if b"close" in options:
        return False
    if http_version != b"1.0":
        return True
    if b"keep-alive" not in options or not honor_http10_keep_alive:
        return False
    return not (intermediary and is_request)
