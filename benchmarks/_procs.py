"""Process plumbing the benchmark scripts share: free ports, pinned peers, /proc readings.

Every benchmark runs its peers as separate processes pinned with ``taskset`` and
reads their cost from ``/proc`` (CPU ticks and ``VmHWM`` summed over the process
tree, so a supervisor's workers count), which is the same for every peer and
needs no cooperation from them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def have(module: str) -> bool:
    """Whether *module* imports in this interpreter (checked in a child: no import here)."""
    return subprocess.run([sys.executable, "-c", f"import {module}"],
                          capture_output=True).returncode == 0


def tree(pid: int) -> list[int]:
    """*pid* and its descendants."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            children = Path(f"/proc/{pids[i]}/task/{pids[i]}/children").read_text().split()
        except OSError:
            children = []
        pids.extend(int(c) for c in children)
        i += 1
    return pids


def status_kib(pid: int, name: str) -> int:
    """A ``/proc/PID/status`` field (``VmHWM``, ``VmRSS``) summed over the tree, in KiB."""
    total = 0
    for p in tree(pid):
        try:
            text = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        match = re.search(rf"{name}:\s+(\d+) kB", text)
        total += int(match.group(1)) if match else 0
    return total


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the tree so far."""
    ticks = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


class Running:
    """A process pinned with taskset to *cpus*; stopped (SIGTERM, then SIGKILL) on exit.

    Ready once a request for *target* sent to *port* gets a response starting
    with *ready*, so a proxy is only measured once it can reach its origin.
    """

    def __init__(self, cmd: list[str], port: int, env: dict[str, str], cwd: Path,
                 cpus: str = "0", target: str = "/", ready: bytes = b"HTTP/1.",
                 tls: bool = False) -> None:
        self.port = port
        #: Probe readiness over TLS (certificate not verified: the benchmark made it).
        self.tls = tls
        self.target = target
        self.ready = ready
        self.cmd = cmd
        self.proc = subprocess.Popen(["taskset", "-c", cpus, *cmd], env=env, cwd=cwd,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> Running:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
                    s = raw
                    if self.tls:
                        ctx = ssl.create_default_context()
                        ctx.check_hostname = False
                        ctx.verify_mode = ssl.CERT_NONE
                        s = ctx.wrap_socket(raw)
                    s.sendall(f"GET {self.target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Connection: close\r\n\r\n".encode())
                    if s.recv(16).startswith(self.ready):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"{' '.join(self.cmd)} did not start")

    def __exit__(self, *exc: object) -> None:
        pids = tree(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in pids[1:]:  # workers a killed parent left behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Cell:
    """One wrk run: requests/s, p99 latency, CPU and peak RSS of the measured tree."""

    rps: float
    p99_ms: float
    cpu_us: float
    rss_mib: float
    errors: int = 0


def print_h2_table(names: list[str], results: dict[str, list[Cell]], role: str,
                   onehop_over_them: bool) -> None:
    """The HTTP/2 rows (median of each name's cells) as a Markdown table, each compared
    with ``onehop``'s: by requests/s (the server table says theirs ÷ onehop's, the proxy
    table onehop's ÷ theirs, as their other tables do) and by CPU per request."""
    ref = statistics.median(c.rps for c in results["onehop"])
    ref_cpu = statistics.median(c.cpu_us for c in results["onehop"])
    ratio = "onehop req/s ÷ its" if onehop_over_them else "vs onehop"
    print(f"| {role} | req/s | {ratio} | CPU µs/req | its CPU ÷ onehop's | peak RSS MiB | "
          "errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        cells = results.get(name)
        if not cells:
            continue
        rps = statistics.median(c.rps for c in cells)
        cpu = statistics.median(c.cpu_us for c in cells)
        print(f"| {name} | {rps:,.0f} | {(ref / rps if onehop_over_them else rps / ref):.2f}x "
              f"| {cpu:.1f} | {cpu / ref_cpu:.2f}x | {max(c.rss_mib for c in cells):.1f} | "
              f"{sum(c.errors for c in cells)} |")


def run_wrk(wrk_args: list[str], url: str, pid: int | None, duration: float) -> Cell:
    """Run ``wrk --latency`` (pinned to CPU 1) at *url*; CPU µs per completed request and
    VmHWM are those of *pid*'s process tree (none for *pid* None: the direct origin)."""
    cmd = ["taskset", "-c", "1", "wrk", f"-d{duration:g}s", "--latency", *wrk_args, url]
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    cpu = cpu_seconds(pid) - cpu0 if pid else 0.0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock_err = re.search(r"Socket errors:.*?read (\d+), write (\d+), timeout (\d+)", out)
    latency = 0.0
    if p99:
        latency = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    n = int(total.group(1)) if total else 0
    nerr = int(errors.group(1)) if errors else 0
    if sock_err:
        nerr += sum(int(g) for g in sock_err.groups())
    return Cell(float(rps.group(1)) if rps else 0.0, latency, cpu / n * 1e6 if n else 0.0,
                status_kib(pid, "VmHWM") / 1024 if pid else 0.0, nerr)


def run_h2load(url: str, pid: int | None, duration: float, conns: int = 50,
               streams: int = 10) -> Cell:
    """Run ``h2load -c CONNS -m STREAMS -D DURATION`` (pinned to CPU 1) at *url*: HTTP/2 by
    prior knowledge for ``http://``, ALPN for ``https://``. p99 is not reported by h2load
    in duration mode (0.0); errors are its failed and errored requests."""
    cmd = ["taskset", "-c", "1", "h2load", "-D", f"{duration:g}", "-c", str(conns), "-m",
           str(streams), url]
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    cpu = cpu_seconds(pid) - cpu0 if pid else 0.0
    rps = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored", out)
    n = int(done.group(2)) if done else 0
    nerr = int(done.group(3)) + int(done.group(4)) if done else 0
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if codes and done:
        nerr += max(0, n - int(codes.group(1)))
    return Cell(float(rps.group(1)) if rps else 0.0, 0.0, cpu / n * 1e6 if n else 0.0,
                status_kib(pid, "VmHWM") / 1024 if pid else 0.0, nerr)


def compiled_python(venv: str | None) -> str | None:
    """The Python of a venv holding onehop's compiled build (``ONEHOP_COMPILE=1 pip install
    .``), for the ``onehop-compiled`` rows; None without one. Exits when onehop there is
    not compiled, so a row labelled compiled never runs the pure build."""
    if not venv:
        return None
    python = os.path.join(venv, "bin", "python")
    out = subprocess.run([python, "-c", "import onehop; print(onehop.compiled)"],
                         capture_output=True, text=True, env=without_pythonpath(), cwd="/")
    if out.stdout.strip() != "True":
        raise SystemExit(f"{venv}: onehop there is not the compiled build "
                         f"({out.stdout.strip() or out.stderr.strip()[-200:]})")
    return python


def without_pythonpath(env: dict[str, str] | None = None) -> dict[str, str]:
    """*env* (default: ours) without ``PYTHONPATH``: a venv's own onehop is imported."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPATH"}
