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


def _serve(script: object) -> Iterator[int]:
    started = threading.Event()
    stop = threading.Event()
    holder: dict[str, int] = {}

    async def run() -> None:
        async with ScriptedServer(script) as server:  # type: ignore[arg-type]
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
