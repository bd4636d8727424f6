"""Test helpers: a fake wire between a client core and a server core (h11's ConnectionPair)."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

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


#: Each test process (pytest-xdist worker) hands out ports from its own slice below the
#: kernel's ephemeral range: a port picked by binding to 0 and closed again could be
#: given by the kernel to another worker's (or a client socket's) next bind before the
#: peer a test starts has bound it ("Address already in use", seen in CI).
_SLICE: Final = 2000
_FIRST: Final = 10000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _slice() -> range | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    low = _FIRST + index * _SLICE
    return range(low, low + _SLICE) if low + _SLICE <= _ephemeral_low() else None


_ports: Final = _slice()
_next: Final = itertools.count(random.randrange(_SLICE))


def free_port() -> int:
    """A TCP port free on loopback right now (for peers the tests start): the next one
    of this process's slice that binds (see ``_SLICE``); bound to 0 when there is no
    slice (more workers than slices, or a low ephemeral range)."""
    if _ports is not None:
        for _ in range(_SLICE):
            port = _ports[next(_next) % _SLICE]
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
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


#: The repository root, where ``python -m onehop`` finds the tests' apps.
ROOT: Final = Path(__file__).resolve().parents[1]


@contextmanager
def onehop_process(*argv: str, merge_output: bool = False,
                   text: bool = True) -> Iterator[subprocess.Popen[Any]]:
    """``python -m onehop ARGV`` from the repository root, stdout and stderr piped apart
    (or merged); on exit it is killed if still running, with any worker it started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "onehop", *argv], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE, text=text)
    try:
        yield proc
    finally:
        leftovers = workers_of(proc.pid)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pid in leftovers | workers_of(proc.pid):
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
