"""The sans-I/O HTTP/1.0/1.1 engine: standard library only, no asyncio, no sockets."""

from onehop.core.connection import Connection, Role
from onehop.core.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
)
from onehop.core.framing import Framing
from onehop.core.head import reason_phrase
from onehop.core.headers import (
    HOP_BY_HOP_FIELDS,
    WRITER_OWNED_FIELDS,
    ConnectionInfo,
    Headers,
    split_fields,
    split_headers,
)
from onehop.core.persistence import persists_after
from onehop.core.reader import DEFAULT_LIMITS, Limits
from onehop.core.state import State
from onehop.core.syntax import KeepAliveParams, parse_token_list

__all__ = [
    "DEFAULT_LIMITS",
    "HOP_BY_HOP_FIELDS",
    "NEED_DATA",
    "PAUSED",
    "WRITER_OWNED_FIELDS",
    "Connection",
    "ConnectionClosed",
    "ConnectionInfo",
    "Data",
    "EndOfMessage",
    "Event",
    "Framing",
    "Headers",
    "InformationalResponse",
    "KeepAliveParams",
    "Limits",
    "Request",
    "Response",
    "Role",
    "State",
    "parse_token_list",
    "persists_after",
    "reason_phrase",
    "split_fields",
    "split_headers",
]
