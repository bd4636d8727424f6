"""Whether a connection persists after the current message (RFC 9112 §9.3, §9.6).

Two functions, one per direction: :func:`persists_after` judges a message we
received (the reader calls it for every head, without a check of its own in
front), :func:`persists_after_sending` one we send (the writer calls it to
choose between ``close`` and ``keep-alive``). Nothing else in the core decides
it; other packages read the outcome (``Connection.keep_alive``, ``must_close``).
"""

from __future__ import annotations

from typing import Final

from onehop.core.framing import Framing

_UNTIL_CLOSE: Final = Framing.UNTIL_CLOSE  # (a global load: an Enum attribute is slow)


def persists_after(
    http_version: bytes,
    options: frozenset[bytes],
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
    # (The commonest case first, in two cheap tests: HTTP/1.1 without "close".)
    if http_version != b"1.0":
        return b"close" not in options
    if b"close" in options or b"keep-alive" not in options or not honor_http10_keep_alive:
        return False
    return not (intermediary and is_request)


def persists_after_sending(
    persisting: bool, options: frozenset[bytes], framing: Framing, unsolicited: bool = False
) -> bool:
    """Whether the connection persists after a message we send (RFC 9112 §9.3, §9.6).

    *persisting* is whether it may still persist at all: we are willing (the
    ``keep_alive`` setting), and no earlier message, received or sent, ended it
    (:func:`persists_after`). Then it ends after this one when:

    - *options* carry ``close``: "A sender that sends close ... MUST close the
      connection after" this message (RFC 9112 §9.6);
    - the body runs until the connection closes (*framing* ``UNTIL_CLOSE``, a
      response to HTTP/1.0 without Content-Length, RFC 9112 §6.3 (7));
    - it is a response that answers no request (*unsolicited*: a 408 or 400 a
      server writes before a request could be read), after which the bytes on
      the connection cannot be trusted to start a request.
    """
    return (
        persisting
        and not unsolicited
        and b"close" not in options
        and framing is not _UNTIL_CLOSE
    )
