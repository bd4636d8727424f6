"""The WebSocket opening handshake's key and accept values (RFC 6455 §4.1, §4.2.2).

One place for the arithmetic both roles need: the server answers a client's
``Sec-WebSocket-Key`` with its ``Sec-WebSocket-Accept`` (:mod:`onehop.server.websocket`),
and the proxy, which turns an HTTP/2 extended CONNECT (RFC 8441) into an HTTP/1.1
upgrade, makes a fresh key and checks the upstream's accept
(:mod:`onehop.proxy.tunnels`). Standard library only, as all of the core.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Final

#: The GUID RFC 6455 §1.3 appends to the key before hashing.
GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def new_key() -> bytes:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded (RFC 6455 §4.1:
    "randomly selected ... for each connection")."""
    return base64.b64encode(os.urandom(16))


def is_valid_key(key: bytes) -> bool:
    """Whether *key* is 16 bytes, base64-encoded, as RFC 6455 §4.1 requires."""
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (ValueError, binascii.Error):
        return False


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for *key* (RFC 6455 §4.2.2): base64 of the SHA-1 of the
    key and the GUID."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())
