"""Content we send is framed as announced (RFC 9112 §6, §7.1) and never more or less.

``Connection.send`` frames the commonest Data and EndOfMessage events itself, without
calling :class:`BodyWriter`; a hypothesis test holds those short cuts to the
writer's own answer on the same sequence of events: the same bytes, or the same error.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onehop.core import Connection, Data, EndOfMessage, Request, Response, Role
from onehop.core.framing import Framing
from onehop.core.writer import BodyWriter
from onehop.errors import LocalProtocolError
from tests.helpers import events

# (request head to answer, response fields, the writer that framing calls for)
SETUPS: list[tuple[bytes, list[tuple[str, str]], Any]] = [
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", [("Content-Length", "4")],
     lambda: BodyWriter(Framing.LENGTH, 4)),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", [], lambda: BodyWriter(Framing.CHUNKED)),
    (b"GET / HTTP/1.0\r\n\r\n", [], lambda: BodyWriter(Framing.UNTIL_CLOSE)),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", [], None),  # 204: no content
    (b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", [("Content-Length", "4")],
     lambda: BodyWriter(Framing.NO_BODY, discard=True)),
]
pieces = st.lists(st.sampled_from([b"", b"a", b"bc", b"defg"]), max_size=4)
trailers = st.sampled_from([[], [("X-T", "1")]])


def _run(send: Any, datas: list[bytes], end_fields: list[tuple[str, str]] | None) -> list[Any]:
    out: list[Any] = []
    for data in datas:
        try:
            out.append(send(Data(data)))
        except LocalProtocolError as exc:
            out.append(type(exc))
    if end_fields is not None:
        try:
            out.append(send(EndOfMessage(end_fields)))
        except LocalProtocolError as exc:
            out.append(type(exc))
    return out


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(len(SETUPS))), pieces, st.none() | trailers)
def test_sent_content_is_framed_as_the_writer_frames_it_rfc9112_6(
    index: int, datas: list[bytes], end_fields: list[tuple[str, str]] | None
) -> None:
    request, fields, make_writer = SETUPS[index]
    server = Connection(Role.SERVER)
    events(server, request)
    server.send(Response(204 if make_writer is None else 200, fields))
    writer = make_writer() if make_writer is not None else BodyWriter(Framing.NO_BODY)

    def direct(event: Any) -> bytes:
        if isinstance(event, Data):
            return writer.data(event.data)
        return writer.end(event.trailers.fields)

    assert _run(server.send, datas, end_fields) == _run(direct, datas, end_fields)


def test_a_request_body_is_framed_by_content_length_rfc9112_6_2() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request("POST", "/", [("Host", "a"), ("Content-Length", "3")]))
    assert client.send(Data(b"abc")) == b"abc" and client.send(EndOfMessage()) == b""
