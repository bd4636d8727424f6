"""``onehop serve`` end to end as a real process: one worker, and ``--workers 2`` supervised."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers import ROOT, free_port, is_alive, onehop_process, wait_for, workers_of

pytestmark = pytest.mark.timeout(30)

APP = "tests.server.apps:app"



@contextmanager
def serve(*args: str, app: str = APP) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``python -m onehop serve APP ARGS`` (output merged); always reap it."""
    with onehop_process("serve", app, "--no-access-log", *args, merge_output=True,
                        text=False) as proc:
        yield proc


def get(port: int, timeout: float = 10) -> tuple[int, bytes]:
    """GET / once the server accepts connections; return (status, body)."""
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            conn.close()



def test_serve_cli_answers_and_exits_cleanly_on_sigterm() -> None:
    port = free_port()
    with serve("--port", str(port)) as proc:
        status, body = get(port)
        assert status == 200 and body == b"pid=%d" % proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout is not None
        assert b"onehop serving on" in proc.stdout.read()


def _serve_fails(*args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "onehop", "serve", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=20)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(("app", "says"), [
    ("tests.server.apps:nope", "has no attribute 'nope'"),
    ("tests.server.nosuch:app", "no module named 'tests.server.nosuch'"),
    ("tests.server.apps", "must look like 'module:attribute'"),
])
def test_serve_cli_bad_app_reference_is_named_without_traceback(app: str, says: str) -> None:
    status, out = _serve_fails(app, "--port", str(free_port()))
    assert status == 3 and says in out and "Traceback" not in out


@pytest.mark.parametrize(("args", "says"), [
    (["--port", "99999"], "port must be between 0 and 65535"),
    (["--workers", "0"], "workers must be >= 1"),
    (["--timeout-keep-alive", "-1"], "timeout_keep_alive must be > 0"),
    (["--http2", "--http", "h11"], "--http2 contradicts --http h11 (HTTP/1.x only)"),
])
def test_serve_cli_bad_option_exits_2_naming_it(args: list[str], says: str) -> None:
    status, out = _serve_fails(APP, *args)
    assert status == 2 and says in out and "Traceback" not in out


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_cli_port_in_use_says_so_and_exits_3(workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        status, out = _serve_fails(APP, "--port", port, "--workers", workers)
    assert status == 3 and "ddress already in use" in out and "Traceback" not in out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_restart_a_dead_worker_and_sigterm_stops_all() -> None:
    port = free_port()
    with serve("--port", str(port), "--workers", "2") as proc:
        assert wait_for(lambda: len(workers_of(proc.pid)) == 2), "two workers expected"
        assert get(port)[0] == 200
        before = workers_of(proc.pid)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        seen: list[set[int]] = []

        def restarted() -> bool:
            # Two equal readings in a row: /proc is read while a worker may be mid-exec.
            now = workers_of(proc.pid)
            seen.append(now)
            return (len(now) == 2 and victim not in now and len(seen) > 1
                    and seen[-2] == now)

        assert wait_for(restarted), f"the worker was not restarted: {seen[-3:]}"
        after = seen[-1]
        assert len(after - before) == 1
        pids = {get(port)[1] for _ in range(20)}
        assert pids <= {b"pid=%d" % p for p in after}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert wait_for(lambda: not any(is_alive(pid) for pid in after), 5), \
            "a worker outlived its supervisor"
