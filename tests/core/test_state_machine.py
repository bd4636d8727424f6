"""The transition table is the engine: every state change goes through it, and each
entry is one some exchange needs (RFC 9112 §9, RFC 9110 §7.8, §9.3.6).

``conftest.py`` checks every change made during the core suite against the table;
here each entry is driven by an exchange that needs it, and the code is checked to
change state only by looking the table up.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from onehop.core import (
    Connection,
    ConnectionClosed,
    ConnectionInfo,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    Role,
    State,
)
from onehop.core.state import ALLOWED, NEXT, TRANSITIONS, Trigger
from onehop.errors import ProtocolError
from tests.helpers import ConnectionPair, events

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
UPGRADE = ConnectionInfo(["upgrade"], [("Upgrade", "example/1")])


def _ok(server: Connection) -> None:
    server.send(Response(200, [("Content-Length", "0")]))
    server.send(EndOfMessage())


def request_then_response_rfc9112_9_3() -> None:
    """IDLE -> BODY -> PAUSED -> IDLE (server reader), IDLE -> BODY -> IDLE (writers)."""
    pair = ConnectionPair()
    pair.client_sends(Request("GET", "/", [("Host", "a")]), EndOfMessage())
    pair.server_sends(Response(200, [("Content-Length", "0")]), EndOfMessage())


def close_ends_both_directions_rfc9112_9_6() -> None:
    """BODY -> DONE: the side that sends close ends its writer, the other its reader;
    IDLE -> DONE: a client whose request went out whole learns of close from the answer."""
    for client_closes in (True, False):
        closing = ConnectionInfo(["close"])
        pair = ConnectionPair()
        pair.client_sends(Request("GET", "/", [("Host", "a")],
                                  connection=closing if client_closes else ConnectionInfo()),
                          EndOfMessage())
        pair.server_sends(Response(200, [("Content-Length", "0")],
                                   connection=ConnectionInfo() if client_closes else closing),
                          EndOfMessage())


def refused_connect_with_close_ends_a_paused_writer_rfc9110_9_3_6() -> None:
    """PAUSED -> DONE: the client waits after CONNECT; a 407 with close ends it."""
    client = Connection(Role.CLIENT)
    client.send(Request("CONNECT", "a:443", [("Host", "a:443")]))
    client.send(EndOfMessage())
    events(client, b"HTTP/1.1 407 Proxy Authentication Required\r\nConnection: close\r\n"
                   b"Content-Length: 0\r\n\r\n")


def refused_upgrade_resumes_the_client_writer_rfc9110_7_8() -> None:
    """PAUSED -> IDLE (client writer): an Upgrade answered without 101 carries on."""
    client = Connection(Role.CLIENT)
    client.send(Request("GET", "/", [("Host", "a")], connection=UPGRADE))
    client.send(EndOfMessage())
    events(client, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def switching_protocols_switches_both_directions_rfc9110_15_2_2() -> None:
    """IDLE/PAUSED -> SWITCHED on both sides of a 101."""
    pair = ConnectionPair()
    pair.client_sends(Request("GET", "/", [("Host", "a")], connection=UPGRADE), EndOfMessage())
    pair.server_sends(InformationalResponse(101, connection=UPGRADE))


def switch_while_the_request_body_is_sent_rfc9110_7_8() -> None:
    """BODY -> SWITCHED (client writer): a 101 may come before the request content ends."""
    client = Connection(Role.CLIENT)
    client.send(Request("POST", "/", [("Host", "a"), ("Content-Length", "5")],
                        connection=UPGRADE))
    events(client, b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                   b"Upgrade: example/1\r\n\r\n")


def tunnel_opens_after_a_last_request_rfc9110_9_3_6() -> None:
    """DONE -> SWITCHED (server reader): a CONNECT with close still gets its tunnel."""
    server = Connection(Role.SERVER)
    events(server, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nConnection: close\r\n\r\n")
    server.send(Response(200))


def end_of_stream_closes_rfc9112_9_6() -> None:
    """IDLE -> CLOSED and DONE -> CLOSED (readers); any writer state -> CLOSED."""
    server = Connection(Role.SERVER)
    events(server, b"", eof=True)  # between messages
    server = Connection(Role.SERVER)
    events(server, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    _ok(server)  # writer DONE
    events(server, b"", eof=True)  # reader DONE -> CLOSED
    server.send(ConnectionClosed())
    for setup in (_writer_idle, _writer_body, _writer_paused, _writer_switched):
        setup().send(ConnectionClosed())


def write_failure_fails_any_writer_state() -> None:
    """Any writer state -> ERROR (send_failed), including CLOSED."""
    for setup in (_writer_idle, _writer_body, _writer_paused, _writer_switched, _writer_done):
        setup().send_failed()
    closed = _writer_idle()
    closed.send(ConnectionClosed())
    closed.send_failed()


def protocol_error_fails_the_reader_rfc9112_8() -> None:
    """IDLE -> ERROR (a malformed head) and BODY -> ERROR (content cut short)."""
    for wire, eof in ((b"GET / HTTP/1.1\r\nHost a\r\n\r\n", False),
                      (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab", True)):
        server = Connection(Role.SERVER)
        with pytest.raises(ProtocolError):
            events(server, wire, eof=eof)


def _writer_idle() -> Connection:
    return Connection(Role.CLIENT)


def _writer_body() -> Connection:
    client = Connection(Role.CLIENT)
    client.send(Request("POST", "/", [("Host", "a"), ("Content-Length", "1")]))
    return client


def _writer_paused() -> Connection:
    client = Connection(Role.CLIENT)
    client.send(Request("CONNECT", "a:443", [("Host", "a:443")]))
    client.send(EndOfMessage())
    return client


def _writer_switched() -> Connection:
    server = Connection(Role.SERVER)
    events(server, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
    server.send(Response(200))
    return server


def _writer_done() -> Connection:
    server = Connection(Role.SERVER, keep_alive=False)
    events(server, GET)
    _ok(server)
    return server


SCENARIOS: list[Callable[[], None]] = [
    request_then_response_rfc9112_9_3,
    close_ends_both_directions_rfc9112_9_6,
    refused_connect_with_close_ends_a_paused_writer_rfc9110_9_3_6,
    refused_upgrade_resumes_the_client_writer_rfc9110_7_8,
    switching_protocols_switches_both_directions_rfc9110_15_2_2,
    switch_while_the_request_body_is_sent_rfc9110_7_8,
    tunnel_opens_after_a_last_request_rfc9110_9_3_6,
    end_of_stream_closes_rfc9112_9_6,
    write_failure_fails_any_writer_state,
    protocol_error_fails_the_reader_rfc9112_8,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_each_exchange_moves_only_as_the_table_allows(
    scenario: Callable[[], None], state_changes: set[tuple[State, State]]
) -> None:
    scenario()
    assert state_changes and state_changes <= ALLOWED


def test_every_entry_of_the_table_is_needed_by_some_exchange(
    state_changes: set[tuple[State, State]],
) -> None:
    for scenario in SCENARIOS:
        scenario()
    # A change to the same state (ERROR on FAIL, CLOSED on CLOSE) cannot be seen.
    assert state_changes == {(s, n) for s, n in ALLOWED if s is not n}


def test_no_way_out_of_error_but_failing_again() -> None:
    """An illegal change fails at once: a writer that failed cannot close cleanly."""
    client = Connection(Role.CLIENT)
    client.send_failed()
    with pytest.raises(KeyError):
        client.send(ConnectionClosed())
    assert client.our_state is State.ERROR


def test_the_table_by_trigger_is_the_table() -> None:
    assert {(s, t): n for t, row in NEXT.items() for s, n in row.items()} == TRANSITIONS
    assert set(NEXT) == set(Trigger)


def test_every_state_change_in_the_connection_is_a_table_lookup() -> None:
    """``self._read``/``self._write`` are assigned only ``_ON_<TRIGGER>[<the same attribute>]``
    (outside ``__init__``), so no change can bypass the table."""
    path = Path(__file__).resolve().parents[2] / "src" / "onehop" / "core" / "connection.py"
    tree = ast.parse(path.read_text())
    changes = 0
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef) or func.name == "__init__":
            continue
        for node in ast.walk(func):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                if not (isinstance(target, ast.Attribute) and target.attr in ("_read", "_write")):
                    continue
                value = node.value
                assert isinstance(value, ast.Subscript), ast.unparse(node)
                assert isinstance(value.value, ast.Name), ast.unparse(node)
                assert value.value.id.removeprefix("_ON_") in Trigger.__members__, (
                    ast.unparse(node))
                looked_up = ast.unparse(value.slice)
                assert looked_up in (f"self.{target.attr}", "state"), ast.unparse(node)
                changes += 1
    assert changes > 20
