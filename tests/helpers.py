"""Test helpers: a fake wire between a client core and a server core (h11's ConnectionPair)."""

from __future__ import annotations

from onehop.core import NEED_DATA, PAUSED, Connection, Event, Role


def events(conn: Connection, data: bytes = b"", *, eof: bool = False) -> list[Event]:
    """Feed *data* (and EOF) and collect events until NEED_DATA or PAUSED."""
    if data:
        conn.receive_data(data)
    if eof:
        conn.receive_data(b"")
    out: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return out
        assert isinstance(event, Event)
        out.append(event)
        if type(event).__name__ == "ConnectionClosed":
            return out


class ConnectionPair:
    """A client and a server core joined by an in-memory wire."""

    def __init__(self, **server_kwargs: object) -> None:
        self.client = Connection(Role.CLIENT)
        self.server = Connection(Role.SERVER, **server_kwargs)  # type: ignore[arg-type]

    def client_sends(self, *evs: Event) -> list[Event]:
        """Send events from the client; return what the server parses."""
        return events(self.server, b"".join(self.client.send(e) for e in evs))

    def server_sends(self, *evs: Event) -> list[Event]:
        """Send events from the server; return what the client parses."""
        return events(self.client, b"".join(self.server.send(e) for e in evs))
