"""The events a :class:`~onehop.core.connection.Connection` yields and accepts.

Events are plain slotted objects with no validation in their constructors: the
parser builds them from already-validated bytes (hot path), and the writer
validates what callers send. Every message head carries ``headers`` (end-to-end
fields only) and ``connection`` (:class:`ConnectionInfo`: options and
connection-specific fields), split once by :func:`onehop.core.headers.split_fields`.
"""

from __future__ import annotations

from typing import ClassVar

from onehop.core.headers import (
    EMPTY_HEADERS,
    NO_CONNECTION_INFO,
    ConnectionInfo,
    HeaderInput,
    Headers,
)


def _encode(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


class Event:
    """Base of all events."""

    __slots__ = ()

    #: The attributes that make an event what it is, for ``==`` and ``repr``: an explicit
    #: list, since a compiled class has no ``__slots__`` to read (every event compared
    #: equal before this list existed; ``tests/test_builds.py`` pins it).
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.FIELDS)
        return f"{type(self).__name__}({attrs})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]


class Request(Event):
    """A request head. ``http_version`` is ``b"1.1"`` or ``b"1.0"``."""

    __slots__ = ("connection", "headers", "http_version", "method", "target")
    FIELDS: ClassVar[tuple[str, ...]] = (
        "connection", "headers", "http_version", "method", "target")

    def __init__(
        self,
        method: bytes | str,
        target: bytes | str,
        headers: HeaderInput = EMPTY_HEADERS,
        connection: ConnectionInfo = NO_CONNECTION_INFO,
        http_version: bytes = b"1.1",
    ) -> None:
        # (Type checks inline, not helper calls: this runs for every request sent.)
        self.method = method if type(method) is bytes else _encode(method)
        self.target = target if type(target) is bytes else _encode(target)
        self.headers = headers if type(headers) is Headers else Headers(headers)
        self.connection = connection
        self.http_version = http_version

    @property
    def expects_continue(self) -> bool:
        """Whether the client waits for ``100 Continue`` (RFC 9110 §10.1.1).

        A 100-continue expectation in an HTTP/1.0 request MUST be ignored.
        """
        if self.http_version == b"1.0":
            return False
        value = self.headers.get(b"expect")
        return value is not None and value.lower() == b"100-continue"


class _ResponseBase(Event):
    __slots__ = ("connection", "headers", "http_version", "reason", "status_code")
    FIELDS: ClassVar[tuple[str, ...]] = (
        "connection", "headers", "http_version", "reason", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: HeaderInput = EMPTY_HEADERS,
        reason: bytes | str = b"",
        connection: ConnectionInfo = NO_CONNECTION_INFO,
        http_version: bytes = b"1.1",
    ) -> None:
        self.status_code = status_code
        self.headers = headers if type(headers) is Headers else Headers(headers)
        self.reason = reason if type(reason) is bytes else _encode(reason)
        self.connection = connection
        self.http_version = http_version


class InformationalResponse(_ResponseBase):
    """A 1xx response (``100 Continue``, ``103 Early Hints``, ``101 Switching Protocols``)."""

    __slots__ = ()


class Response(_ResponseBase):
    """A final (2xx-5xx) response head."""

    __slots__ = ()


class Data(Event):
    """A piece of message content (de-chunked on receive; framed by the writer on send)."""

    __slots__ = ("data",)
    FIELDS: ClassVar[tuple[str, ...]] = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class EndOfMessage(Event):
    """The end of a message's content, with its trailer fields (chunked only)."""

    __slots__ = ("trailers",)
    FIELDS: ClassVar[tuple[str, ...]] = ("trailers",)

    def __init__(self, trailers: HeaderInput = EMPTY_HEADERS) -> None:
        self.trailers = trailers if type(trailers) is Headers else Headers(trailers)


class ConnectionClosed(Event):
    """The peer closed its sending side cleanly between messages."""

    __slots__ = ()


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: ``next_event()`` needs more bytes before it can return an event.
NEED_DATA = _Sentinel("NEED_DATA")
#: ``next_event()`` will not parse further until our side acts (server: send the
#: response; after ``close``: nothing more will ever be parsed; after a switch:
#: take ``trailing_data``).
PAUSED = _Sentinel("PAUSED")
