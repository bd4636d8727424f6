"""The sans-I/O HTTP/1.0/1.1 engine: standard library only, no asyncio, no sockets."""

from onehop.core.connection import Connection, Role, reason_phrase
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
from onehop.core.headers import (
    HOP_BY_HOP_FIELDS,
    ConnectionInfo,
    Headers,
    KeepAliveParams,
    parse_token_list,
    split_fields,
    split_headers,
)
from onehop.core.persistence import persists_after
from onehop.core.reader import DEFAULT_LIMITS, Limits
from onehop.core.state import State

__all__ = [
    "DEFAULT_LIMITS",
    "HOP_BY_HOP_FIELDS",
    "NEED_DATA",
    "PAUSED",
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
