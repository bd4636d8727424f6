"""``onehop get``: bodies on stdout, heads and connection reuse on stderr with -v."""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Iterator

import pytest

from onehop.client import cli

from .servers import Action, ScriptedServer, Seen, ok

pytestmark = pytest.mark.timeout(20)


def _serve(script: object, delay: float = 0.0) -> Iterator[int]:
    started = threading.Event()
    stop = threading.Event()
    holder: dict[str, int] = {}

    async def run() -> None:
        async with ScriptedServer(script, delay=delay) as server:  # type: ignore[arg-type]
            holder["port"] = server.port
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(run(),))
    thread.start()
    started.wait(5)
    try:
        yield holder["port"]
    finally:
        stop.set()
        thread.join(5)


@pytest.fixture
def port() -> Iterator[int]:
    def script(seen: Seen) -> Action:
        if seen.path == "/close":
            return ok(b"bye\n", "Connection: close\r\n"), "close"
        return ok(f"{seen.method} {seen.path} {seen.body.decode()}\n".encode()), "keep"

    yield from _serve(script)


def test_get_prints_bodies_and_reuses_one_connection_verbose_rfc9112_9_3(
    port: int, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    base = f"http://127.0.0.1:{port}"
    assert cli.main(["-v", f"{base}/a", f"{base}/close", f"{base}/b"]) == 0
    out, err = capfdbinary.readouterr()
    assert out == b"GET /a \nbye\nGET /b \n"
    text = err.decode()
    assert "connection #" in text and " new for GET" in text and " reused for GET" in text
    assert "closed: server sent Connection: close" in text
    assert "< HTTP/1.1 200 OK" in text and "> GET /a HTTP/1.1" in text


def test_get_with_data_posts_and_headers_are_sent(
    port: int, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    url = f"http://127.0.0.1:{port}/p"
    assert cli.main(["-d", "hi", "-H", "X-A: 1", url]) == 0
    assert capfdbinary.readouterr().out == b"POST /p hi\n"


def test_get_failure_exits_non_zero_with_cause_on_stderr(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    from .servers import free_port

    assert cli.main([f"http://127.0.0.1:{free_port()}/"]) == 1
    assert b"ConnectError" in capfdbinary.readouterr().err


def test_register_adds_the_get_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="onehop")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["get", "-X", "PUT", "-0", "--wait", "0.5", "http://x/", "http://y/"])
    assert (args.method, args.no_keepalive, args.wait, args.urls) == (
        "PUT", True, 0.5, ["http://x/", "http://y/"])
    assert args.func is cli.run


# --- error paths: one line on stderr naming the cause, exit status 1, no traceback ----------


def test_get_unreachable_host_prints_connect_error_and_exits_1(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    from .servers import free_port

    url = f"http://127.0.0.1:{free_port()}/"
    assert cli.main([url]) == 1
    err = capfdbinary.readouterr().err.decode()
    assert err.startswith(f"onehop get: GET {url}: ConnectError: cannot connect to ")
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("ftp://example.invalid/", "unsupported URL scheme"),
        ("example.invalid/path", "unsupported URL scheme"),
        ("http:///path", "no host in"),
        ("http://127.0.0.1:99999/", "Port out of range"),
        ("http://127.0.0.1:eighty/", "Port could not be cast"),
        ("http://[::1/", "Invalid IPv6 URL"),
    ],
)
def test_get_invalid_url_prints_the_reason_and_exits_1_rfc3986(
    url: str, cause: str, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert cli.main([url]) == 1
    err = capfdbinary.readouterr().err.decode()
    assert err.startswith(f"onehop get: GET {url}: ClientError: ") and cause in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_get_invalid_url_from_the_onehop_command_has_no_traceback() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "onehop", "get", "http://[::1/"],
                          capture_output=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert proc.stderr.startswith(b"onehop get: GET http://[::1/: ClientError: invalid URL")
    assert b"Traceback" not in proc.stderr


def test_get_non_ascii_url_is_sent_percent_encoded_rfc3986_2_1(
    port: int, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert cli.main([f"http://127.0.0.1:{port}/caf\u00e9 au lait"]) == 0
    assert capfdbinary.readouterr().out == b"GET /caf%C3%A9%20au%20lait \n"


def _cut_short(seen: Seen) -> Action:
    if seen.path == "/chunked":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "close"
    return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", "close"


@pytest.mark.parametrize("path", ["/length", "/chunked"])
def test_get_server_closing_mid_body_reports_an_incomplete_message_and_exits_1_rfc9112_8(
    path: str, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    # RFC 9112 §8: a message whose connection closes before the Content-Length octets
    # (or the last chunk) arrived is incomplete; it must not pass as a whole response.
    for p in _serve(_cut_short):
        url = f"http://127.0.0.1:{p}{path}"
        assert cli.main([url]) == 1
    out, err = capfdbinary.readouterr()
    assert out == b""  # no partial body passed off as the response
    text = err.decode()
    assert text.startswith(f"onehop get: GET {url}: IncompleteMessage: ")
    assert "Traceback" not in text and text.count("\n") == 1


def test_get_failure_does_not_stop_the_next_urls(
    port: int, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert cli.main(["http://[::1/", f"http://127.0.0.1:{port}/after"]) == 1
    out, err = capfdbinary.readouterr()
    assert out == b"GET /after \n"
    assert b"invalid URL" in err


def test_get_read_timeout_names_the_limit_once_and_exits_1(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    for p in _serve(lambda seen: (ok(), "keep"), delay=2.0):
        url = f"http://127.0.0.1:{p}/slow"
        assert cli.main(["--timeout", "0.2", url]) == 1
    err = capfdbinary.readouterr().err.decode()
    assert err == (f"onehop get: GET {url}: ReadTimeout: no response within the read "
                   "timeout (0.2 s)\n")
