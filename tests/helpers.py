"""Test helpers: a fake wire between a client core and a server core (h11's ConnectionPair)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

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


def free_port() -> int:
    """A TCP port free on loopback right now (for peers the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_alive(pid: int) -> bool:
    """Whether *pid* runs (a zombie awaiting its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll *predicate* until it holds or *timeout* seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def workers_of(pid: int) -> set[int]:
    """Live worker processes (multiprocessing spawn children) of the supervisor *pid*."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found
