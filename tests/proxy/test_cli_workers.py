"""``onehop proxy --workers 2`` as a real process tree: a supervisor and two spawned
workers sharing one listening socket; both answer, a dead worker is restarted, and
SIGTERM to the supervisor stops every one of them (the same runner as ``onehop serve``)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import ROOT, is_alive, wait_for, workers_of
from tests.proxy.helpers import RawUpstream, free_port, read_head

pytestmark = pytest.mark.timeout(60)



def tree(pid: int) -> list[int]:
    """*pid* and its live descendants."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            kids = Path(f"/proc/{pids[i]}/task/{pids[i]}/children").read_text().split()
        except OSError:
            kids = []
        pids.extend(int(k) for k in kids)
        i += 1
    return [p for p in pids if is_alive(p)]



def socket_inodes(pid: int) -> set[int]:
    out: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def tcp_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the IPv4 TCP socket with these ports, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if (int(cols[1].rsplit(":", 1)[1], 16) == local_port
                and int(cols[2].rsplit(":", 1)[1], 16) == remote_port):
            return int(cols[9])
    return None



class Origin:
    """Answers every request ``ok``; records the proxy-side port of each connection."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, sock: socket.socket, index: int) -> None:
        with self.lock:
            self.ports.append(sock.getpeername()[1])
        while read_head(sock):
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@contextmanager
def proxy_process(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m onehop proxy ARGS``; always killed and reaped, workers included."""
    proc = subprocess.Popen([sys.executable, "-m", "onehop", "proxy", "--no-access-log", *args],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    try:
        yield proc
    finally:
        seen.update(tree(proc.pid) + sorted(workers_of(proc.pid)))
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pid in seen:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)


def get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        out = b""
        while data := s.recv(65536):
            out += data
        return out


def test_workers_2_share_the_port_answer_restart_and_sigterm_stops_all() -> None:
    """``--workers 2``: two worker processes under a supervisor, one socket inode between
    them, requests served by both (each has its own upstream pool, so the origin sees
    connections from two processes), a killed worker replaced, and a SIGTERM to the
    supervisor stops them all."""
    origin = Origin()
    with RawUpstream(origin) as up:
        port = free_port()
        with proxy_process("--listen", f"127.0.0.1:{port}", "--upstream",
                           f"http://127.0.0.1:{up.port}", "--workers", "2") as proc:
            assert wait_for(lambda: len(workers_of(proc.pid)) == 2), "two workers expected"
            workers = sorted(workers_of(proc.pid))
            assert wait_for(lambda: get_ok(port)), "the proxy does not answer"
            listening = [socket_inodes(pid) for pid in workers]
            assert listening[0] & listening[1], "the workers do not share the listening socket"

            def owners() -> set[int]:
                found = set()
                with origin.lock:
                    ports = list(origin.ports)
                for p in ports:
                    inode = tcp_inode(p, up.port)
                    found |= {pid for pid in workers if inode in socket_inodes(pid)}
                return found

            def burst() -> bool:
                threads = [threading.Thread(target=get_ok, args=(port,)) for _ in range(16)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return owners() == set(workers)

            assert wait_for(burst, 20), f"not every worker served: {owners()} of {workers}"

            os.kill(workers[0], signal.SIGKILL)
            assert wait_for(lambda: len(workers_of(proc.pid) - {workers[0]}) == 2, 15), (
                "the dead worker was not replaced")
            assert wait_for(lambda: get_ok(port))
            everyone = workers_of(proc.pid)

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
            assert wait_for(lambda: not any(is_alive(pid) for pid in everyone), 10)


def get_ok(port: int) -> bool:
    try:
        out = get(port)
    except OSError:
        return False
    return out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"ok")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_during_a_slow_request_lets_curl_get_its_answer_rfc9112_9_6(
    workers: str,
) -> None:
    """Graceful shutdown: a request in flight when SIGTERM comes is answered (with
    ``close``), not cut: curl gets its 200, not "(52) Empty reply from server"."""
    in_flight = threading.Event()

    def slow(sock: socket.socket, index: int) -> None:
        while head := read_head(sock):
            if b"/slow" not in head:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                continue
            in_flight.set()
            time.sleep(1.0)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")

    with RawUpstream(slow) as up:
        port = free_port()
        with proxy_process("--listen", f"127.0.0.1:{port}", "--upstream",
                           f"http://127.0.0.1:{up.port}", "--workers", workers) as proc:
            # Every worker up and serving (the kernel accepts for the supervisor's socket
            # before any worker does): a fresh connection is answered.
            assert wait_for(lambda: all(get_ok(port) for _ in range(4))), "not serving"
            curl = subprocess.Popen(
                ["curl", "-sS", "-i", f"http://127.0.0.1:{port}/slow"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            # SIGTERM once the request is in flight (has reached the upstream): a
            # connection still in the listen queue when the workers stop accepting is
            # not in flight, and is reset, as nginx's and uvicorn's would be.
            assert in_flight.wait(10), "the request never reached the upstream"
            proc.send_signal(signal.SIGTERM)
            out, err = curl.communicate(timeout=10)
            assert proc.wait(15) == 0
    assert curl.returncode == 0, err
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"slow"), out
    assert b"\r\nConnection: close\r\n" in out

