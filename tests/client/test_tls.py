"""https through the standard ``ssl`` module: verification on by default, ALPN ``http/1.1``.

A CA and a server certificate for 127.0.0.1 are made with the openssl CLI in a
temporary directory; the server is an asyncio TLS server on loopback that
records the ALPN protocol it selected.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from onehop.client import Client, ConnectError

OPENSSL = shutil.which("openssl")
pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(OPENSSL is None, reason="needs the openssl CLI"),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        assert OPENSSL is not None
        subprocess.run([OPENSSL, *args], cwd=tmp, check=True, capture_output=True, timeout=30)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=onehop test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    Path(tmp, "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    yield tmp


@contextlib.asynccontextmanager
async def tls_server(certs: Path) -> AsyncIterator[tuple[int, list[str | None]]]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    alpn: list[str | None] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        alpn.append(writer.get_extra_info("ssl_object").selected_alpn_protocol())
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1], alpn
    finally:
        server.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await server.wait_closed()


async def test_self_signed_certificate_fails_verification_by_default_with_a_clear_error(
    certs: Path,
) -> None:
    async with tls_server(certs) as (port, _), Client() as client:
        with pytest.raises(ConnectError, match=r"certificate verification failed.*verify=False"):
            await client.get(f"https://127.0.0.1:{port}/")


async def test_https_succeeds_with_the_ca_given_and_offers_alpn_http11_rfc7301(
    certs: Path,
) -> None:
    async with tls_server(certs) as (port, alpn), Client(verify=str(certs / "ca.pem")) as client:
        a = await client.get(f"https://127.0.0.1:{port}/a")
        b = await client.get(f"https://localhost:{port}/b")
        c = await client.get(f"https://127.0.0.1:{port}/c")
    assert [r.content for r in (a, b, c)] == [b"secure"] * 3
    assert c.reused
    assert alpn == ["http/1.1", "http/1.1"]  # only http/1.1 offered, though the server prefers h2


async def test_https_with_verify_false_skips_verification(certs: Path) -> None:
    async with tls_server(certs) as (port, alpn), Client(verify=False) as client:
        r = await client.get(f"https://127.0.0.1:{port}/")
    assert r.content == b"secure"
    assert alpn == ["http/1.1"]


@contextlib.contextmanager
def tls_server_thread(certs: Path) -> Iterator[int]:
    """:func:`tls_server` on its own event loop in a thread, for the blocking CLI."""
    import threading

    started = threading.Event()
    stop = threading.Event()
    holder: dict[str, int] = {}

    async def run() -> None:
        async with tls_server(certs) as (port, _):
            holder["port"] = port
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(run(),))
    thread.start()
    try:
        assert started.wait(10)
        yield holder["port"]
    finally:
        stop.set()
        thread.join(5)


def test_get_cli_reports_certificate_verification_failure_and_exits_60_as_curl(
    certs: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    from onehop.client import cli

    with tls_server_thread(certs) as port:
        url = f"https://127.0.0.1:{port}/"
        assert cli.main([url]) == 60  # curl's CURLE_PEER_FAILED_VERIFICATION
        failed = capfdbinary.readouterr()
        assert cli.main(["-k", url]) == 0
        insecure = capfdbinary.readouterr()
        assert cli.main(["--cacert", str(certs / "ca.pem"), url]) == 0
        trusted = capfdbinary.readouterr()
    err = failed.err.decode()
    assert err.startswith(f"onehop get: GET {url}: ConnectError: ")
    assert "TLS certificate verification failed" in err and "--cacert" in err
    assert "--insecure" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert failed.out == b""
    assert insecure.out == b"secure" == trusted.out


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_get_cli_tls_flags_match_curl(certs: Path) -> None:
    import os
    import sys

    curl = shutil.which("curl")
    assert curl is not None
    with tls_server_thread(certs) as port:
        url = f"https://127.0.0.1:{port}/"
        # (--http1.1: the test server offers h2 by ALPN but speaks only HTTP/1.1.)
        for flags in ([], ["-k"], ["--cacert", str(certs / "ca.pem")]):
            flags = ["--http1.1", *flags]
            ours = subprocess.run([sys.executable, "-m", "onehop", "get", "-s", *flags, url],
                                  capture_output=True, timeout=30, env=os.environ.copy())
            theirs = subprocess.run([curl, "-s", *flags, url], capture_output=True, timeout=30)
            assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), flags
