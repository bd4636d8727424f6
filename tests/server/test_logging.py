"""Logging of ``onehop serve`` (issue 13, item 5): named loggers, one line per rejected
request with its cause, a line per listener and process at start and stop, levels that
add something, ``--log-config``, colours, and no doubled lines from apps that configure
logging themselves (a real Django 5.2 site)."""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from onehop._aio import logs
from tests.helpers import free_port, onehop_process, wait_for, workers_of
from tests.server.test_cli import ROOT, get, serve

pytestmark = pytest.mark.timeout(60)


@contextmanager
def serve_split(*args: str, app: str = "tests.server.apps:app"
                ) -> Iterator[subprocess.Popen[str]]:
    """``onehop serve APP ARGS`` with stdout and stderr apart; SIGKILLed if still running."""
    with onehop_process("serve", app, *args) as proc:
        yield proc


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM, wait for a clean exit, return (stdout, stderr)."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out, err


def raw(port: int, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_each_rejected_request_is_one_info_line_with_status_and_cause() -> None:
    port = free_port()
    with serve_split("--port", str(port), "--header-timeout", "0.5", "--max-body-size", "10",
                     "--max-line-size", "100") as proc:
        assert get(port)[0] == 200
        assert raw(port, b"NOT HTTP\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        assert raw(port, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n\r\n").startswith(
            b"HTTP/1.1 414 ")
        big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40_000 + b"\r\n\r\n"
        assert raw(port, big).startswith(b"HTTP/1.1 431 ")
        assert raw(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                   ).startswith(b"HTTP/1.1 413 ")
        assert raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n").startswith(b"HTTP/1.1 408 ")
        _, err = stop(proc)
    for cause in (": 400 malformed request-line", ": 414 request-line longer than 100",
                  ": 431 message head larger than", ": 413 Content-Length 100 exceeds",
                  ": 408 request head not complete after 0.5 s"):  # (the 408)
        lines = [line for line in err.splitlines() if cause in line]
        assert len(lines) == 1, (cause, err)
        assert re.match(r"INFO:     127\.0\.0\.1:\d+: ", lines[0]), lines[0]


def test_start_and_stop_print_a_line_per_listener_and_process() -> None:
    port = free_port()
    with serve_split("--port", str(port)) as proc:
        assert get(port)[0] == 200
        out, err = stop(proc)
    lines = err.splitlines()
    assert f"INFO:     Started server process [{proc.pid}]" in lines
    assert (f"INFO:     onehop serving on http://127.0.0.1:{port} (Press CTRL+C to quit)"
            in lines)
    assert "INFO:     Shutting down: 0 connection(s) open" in lines
    assert f"INFO:     Stopped listening on http://127.0.0.1:{port}" in lines
    assert f"INFO:     Finished server process [{proc.pid}]" in lines
    # Access lines go to stdout on onehop.access, uvicorn's way.
    assert re.fullmatch(r'INFO:     127\.0\.0\.1:\d+ - "GET / HTTP/1\.1" 200 OK\n', out)


def test_workers_log_each_worker_start_and_stop() -> None:
    port = free_port()
    with serve_split("--port", str(port), "--workers", "2", "--no-access-log") as proc:
        assert wait_for(lambda: len(workers_of(proc.pid)) == 2)
        pids = workers_of(proc.pid)
        assert get(port)[0] == 200
        time.sleep(0.5)  # (both workers have logged their start)
        _, err = stop(proc)
    assert f"Started parent process [{proc.pid}] with 2 worker processes" in err
    for pid in pids:
        assert f"Started worker process [{pid}]" in err
        assert f"Started server process [{pid}]" in err
        assert f"Finished server process [{pid}]" in err
        assert f"Stopped worker process [{pid}]" in err
    assert err.count(f"Stopped listening on http://127.0.0.1:{port}") == 2


def test_log_level_trace_adds_a_line_per_connection_and_debug_the_settings() -> None:
    port = free_port()
    with serve_split("--port", str(port), "--log-level", "trace") as proc:
        assert get(port)[0] == 200
        _, err = stop(proc)
    assert re.search(r"TRACE:    127\.0\.0\.1:\d+: connection made \(1 open\)", err), err
    assert re.search(r"TRACE:    127\.0\.0\.1:\d+: connection lost after 1 request\(s\) "
                     r"\(0 open\)", err), err
    assert "DEBUG:    Application 'tests.server.apps:app' runs as asgi3" in err
    assert "DEBUG:    Connection rules: ServingConfig(" in err


def test_log_level_warning_hides_info_lines() -> None:
    port = free_port()
    with serve_split("--port", str(port), "--log-level", "warning") as proc:
        assert get(port)[0] == 200
        out, err = stop(proc)
    assert out == "" and "INFO" not in err


def test_django_lines_are_printed_once() -> None:
    """Issue 13: Django's own console handler printed "Not Found" and a root handler of ours
    printed it again. onehop configures only its own loggers."""
    pytest.importorskip("django", minversion="5.2")
    port = free_port()
    with serve_split("--port", str(port), app="tests.server.django_site:application") as proc:
        assert get(port)[0] == 404  # (waits until it listens; Django has no "/")
        assert raw(port, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   ).startswith(b"HTTP/1.1 200 ")
        assert raw(port, b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   ).startswith(b"HTTP/1.1 404 ")
        out, err = stop(proc)
    assert (out + err).count("Not Found: /missing") == 1, err


def test_an_app_with_its_own_root_handler_keeps_it_and_sees_no_onehop_doubles(
        tmp_path: Path) -> None:
    (tmp_path / "rootapp.py").write_text(
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, format='ROOT %(name)s %(message)s',\n"
        "                    stream=sys.stderr)\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    logging.getLogger('myapp').info('handled %s', scope['path'])\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'ok'})\n")
    port = free_port()
    with serve_split("--port", str(port), "--app-dir", str(tmp_path), "--lifespan", "off",
                     app="rootapp:app") as proc:
        assert get(port)[0] == 200
        _, err = stop(proc)
    assert err.count("ROOT myapp handled /") == 1
    assert "ROOT onehop" not in err  # onehop's records do not reach the app's root handler
    assert err.count("onehop serving on") == 1


def test_log_config_json_is_a_dictconfig(tmp_path: Path) -> None:
    logfile = tmp_path / "access.log"
    config = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(name)s|%(levelname)s|%(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(logfile),
                              "formatter": "plain"}},
        "loggers": {"onehop": {"handlers": ["file"], "level": "INFO", "propagate": False},
                    "onehop.access": {"handlers": ["file"], "level": "INFO",
                                      "propagate": False}},
    }
    path = tmp_path / "log.json"
    path.write_text(json.dumps(config))
    port = free_port()
    with serve_split("--port", str(port), "--log-config", str(path)) as proc:
        assert get(port)[0] == 200
        stop(proc)
    text = logfile.read_text()
    assert f"onehop.error|INFO|onehop serving on http://127.0.0.1:{port}" in text
    assert re.search(r'onehop\.access\|INFO\|127\.0\.0\.1:\d+ - "GET / HTTP/1\.1" 200', text)


def test_log_config_yaml_and_ini(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    yaml_file = tmp_path / "log.yaml"
    yaml_file.write_text(
        "version: 1\ndisable_existing_loggers: false\n"
        "formatters: {f: {format: 'YAML %(message)s'}}\n"
        "handlers: {h: {class: logging.StreamHandler, formatter: f, "
        "stream: 'ext://sys.stderr'}}\n"
        "loggers: {onehop: {handlers: [h], level: INFO, propagate: false}}\n")
    ini_file = tmp_path / "log.ini"
    ini_file.write_text(
        "[loggers]\nkeys=root,onehop\n[handlers]\nkeys=h\n[formatters]\nkeys=f\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n"
        "[logger_onehop]\nlevel=INFO\nhandlers=h\nqualname=onehop\npropagate=0\n"
        "[handler_h]\nclass=StreamHandler\nformatter=f\nargs=(sys.stderr,)\n"
        "[formatter_f]\nformat=INI %(message)s\n")
    for path, prefix in ((yaml_file, "YAML"), (ini_file, "INI")):
        port = free_port()
        with serve_split("--port", str(port), "--log-config", str(path)) as proc:
            assert get(port)[0] == 200
            _, err = stop(proc)
        assert f"{prefix} onehop serving on http://127.0.0.1:{port}" in err


def test_bad_log_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    done = subprocess.run([sys.executable, "-m", "onehop", "serve", "tests.server.apps:app",
                           "--log-config", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 2 and "cannot apply log config" in done.stderr
    assert "Traceback" not in done.stderr


def test_use_colors_colours_the_level_and_no_use_colors_does_not() -> None:
    for flag, coloured in (("--use-colors", True), ("--no-use-colors", False)):
        port = free_port()
        with serve_split("--port", str(port), flag) as proc:
            assert get(port)[0] == 200
            out, err = stop(proc)
        assert ("\x1b[32mINFO\x1b[0m:     onehop serving on" in err) is coloured
        assert ("\x1b[32m200 OK\x1b[0m" in out) is coloured


def test_trace_is_a_level_named_like_uvicorns() -> None:
    assert logging.getLevelName(logs.TRACE) == "TRACE" and logs.TRACE == 5
    assert logs.level_number("trace") == 5 and logs.level_number("debug") == logging.DEBUG


def test_access_formatter_reads_uvicorns_access_fields() -> None:
    """A uvicorn-style format (``client_addr``, ``request_line``, ``status_code``) works
    on onehop's access records, so a uvicorn log config carries over."""
    fmt = logs.AccessFormatter('%(levelprefix)s %(client_addr)s - "%(request_line)s" '
                               "%(status_code)s", use_colors=False)
    record = logging.LogRecord("onehop.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/x", "1.1", 404), None)
    assert fmt.format(record) == 'INFO:     127.0.0.1:5000 - "GET /x HTTP/1.1" 404 Not Found'


def test_serve_cli_merged_output_still_names_the_listener() -> None:
    port = free_port()
    with serve("--port", str(port)) as proc:
        assert get(port)[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout is not None
        assert b"onehop serving on" in proc.stdout.read()
