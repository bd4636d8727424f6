"""``onehop serve`` over TLS (issue 13, item 3), against real peers: curl, openssl s_client,
the onehop client and httpx, with certificates the tests make; uvicorn as the reference."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from onehop.client import Client
from tests.helpers import free_port
from tests.server.certs import KEY_PASSWORD, Certs, make_certs
from tests.server.helpers import running
from tests.server.test_cli import ROOT, serve

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("curl") is None,
                       reason="needs the openssl and curl commands (.ci/run installs them)"),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


async def scope_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the parts of its scope a TLS test looks at, as JSON."""
    assert scope["type"] == "http"
    body = json.dumps({"scheme": scope["scheme"], "http_version": scope["http_version"],
                       "path": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def tls(certs: Certs, **kwargs: Any) -> dict[str, Any]:
    return {"ssl_certfile": certs.cert, "ssl_keyfile": certs.key, **kwargs}


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "-v", *args], capture_output=True, text=True,
                          timeout=20)


def test_curl_gets_https_with_alpn_http11_and_scope_scheme_https(certs: Certs) -> None:
    with running(scope_app, **tls(certs)) as server:
        url = f"https://localhost:{server.port}"
        # (--http1.1: curl offers only http/1.1; HTTP/2 over TLS is in test_http2.py)
        out = curl("--http1.1", "--cacert", certs.ca, f"{url}/a", f"{url}/b")
    assert out.returncode == 0, out.stderr
    assert "ALPN: server accepted http/1.1" in out.stderr
    assert "Re-using existing connection" in out.stderr  # keep-alive over TLS
    first = out.stdout[: out.stdout.index("}") + 1]
    assert json.loads(first) == {"scheme": "https", "http_version": "1.1", "path": "/a"}


def test_openssl_s_client_negotiates_http11_by_alpn_and_verifies(certs: Certs) -> None:
    with running(scope_app, **tls(certs)) as server:
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-alpn",
             "http/1.1", "-CAfile", certs.ca, "-verify_return_error", "-ign_eof",
             "-servername", "localhost"],
            input="GET /s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            capture_output=True, text=True, timeout=20)
    assert "ALPN protocol: http/1.1" in out.stdout
    assert "Verify return code: 0 (ok)" in out.stdout
    assert "HTTP/1.1 200 OK" in out.stdout and '"scheme": "https"' in out.stdout


def test_onehop_client_and_httpx_verify_the_server_against_the_ca(certs: Certs) -> None:
    async def fetch(port: int) -> tuple[Any, ...]:
        async with Client(verify=certs.ca) as client:
            a = await client.get(f"https://localhost:{port}/one")
            b = await client.get(f"https://localhost:{port}/two")
        ctx = ssl.create_default_context(cafile=certs.ca)
        async with httpx.AsyncClient(verify=ctx) as hx:
            h = await hx.get(f"https://127.0.0.1:{port}/hx")
        return a.status, b.reused, json.loads(a.content)["scheme"], h.status_code, h.json()

    with running(scope_app, **tls(certs)) as server:
        status, reused, scheme, hx_status, hx_json = asyncio.run(fetch(server.port))
    assert (status, reused, scheme) == (200, True, "https")
    assert hx_status == 200 and hx_json["scheme"] == "https"


def test_a_client_that_does_not_trust_the_ca_is_refused_by_its_own_verification(
        certs: Certs) -> None:
    with running(scope_app, **tls(certs)) as server:
        out = curl(f"https://localhost:{server.port}/")
    assert out.returncode == 60  # curl: peer certificate cannot be authenticated


def test_cert_reqs_2_requires_a_client_certificate_signed_by_ca_certs(certs: Certs) -> None:
    with running(scope_app, **tls(certs, ssl_cert_reqs=2, ssl_ca_certs=certs.ca)) as server:
        url = f"https://localhost:{server.port}/mtls"
        without = curl("--cacert", certs.ca, url)
        with_cert = curl("--cacert", certs.ca, "--cert", certs.client_cert, "--key",
                         certs.client_key, url)
    assert without.returncode != 0  # the handshake (or the first read) fails
    assert with_cert.returncode == 0, with_cert.stderr
    assert json.loads(with_cert.stdout)["scheme"] == "https"


def test_an_encrypted_key_is_opened_with_its_password(certs: Certs) -> None:
    config = tls(certs, ssl_keyfile=certs.encrypted_key, ssl_keyfile_password=KEY_PASSWORD)
    with running(scope_app, **config) as server:
        out = curl("--cacert", certs.ca, f"https://localhost:{server.port}/")
    assert out.returncode == 0 and '"https"' in out.stdout


def _serve_fails(*args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "onehop", "serve", "tests.server.apps:app",
                           "--port", str(free_port()), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=20)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(("which", "says"), [
    ("missing", "does not exist"),
    ("no password", "is encrypted: give its password"),
    ("wrong password", "wrong key password"),
    ("key for another cert", "key values mismatch"),
])
def test_serve_cli_bad_tls_setup_is_one_line_and_exit_2(certs: Certs, which: str,
                                                         says: str) -> None:
    args = {
        "missing": ["--ssl-certfile", certs.cert + ".nope"],
        "no password": ["--ssl-certfile", certs.cert, "--ssl-keyfile", certs.encrypted_key],
        "wrong password": ["--ssl-certfile", certs.cert, "--ssl-keyfile", certs.encrypted_key,
                           "--ssl-keyfile-password", "wrong"],
        "key for another cert": ["--ssl-certfile", certs.cert, "--ssl-keyfile",
                                 certs.client_key],
    }[which]
    status, out = _serve_fails(*args)
    assert status == 2 and says in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_serve_cli_two_workers_each_build_their_tls_context(certs: Certs) -> None:
    port = free_port()
    with serve("--port", str(port), "--workers", "2", "--ssl-certfile", certs.cert,
               "--ssl-keyfile", certs.key) as proc:
        url = f"https://localhost:{port}/"
        for _ in range(100):
            out = curl("--cacert", certs.ca, url)
            if out.returncode == 0:
                break
        assert out.returncode == 0 and out.stdout.startswith("pid="), out.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert proc.stdout is not None
        assert f"onehop serving on https://127.0.0.1:{port}".encode() in proc.stdout.read()


@pytest.fixture
def uvicorn_tls(certs: Certs) -> Iterator[int]:
    """uvicorn serving ``scope_app`` with the same certificate: the reference."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.server.test_tls:scope_app", "--port",
         str(port), "--ssl-certfile", certs.cert, "--ssl-keyfile", certs.key, "--lifespan",
         "off", "--log-level", "warning"], cwd=ROOT)
    try:
        yield port
    finally:
        proc.kill()
        proc.wait(10)


def test_scope_over_tls_matches_uvicorn(certs: Certs, uvicorn_tls: int) -> None:
    """Where the ASGI spec leaves room, uvicorn's scope is the reference: same scheme and
    HTTP version over TLS (HTTP/1.1: uvicorn has no HTTP/2)."""
    for _ in range(100):
        theirs = curl("--http1.1", "--cacert", certs.ca, f"https://localhost:{uvicorn_tls}/u")
        if theirs.returncode == 0:
            break
        time.sleep(0.05)
    with running(scope_app, **tls(certs)) as server:
        ours = curl("--http1.1", "--cacert", certs.ca, f"https://localhost:{server.port}/u")
    assert json.loads(ours.stdout) == json.loads(theirs.stdout)


def test_ssl_version_and_ciphers_are_applied(certs: Certs) -> None:
    """``--ssl-ciphers`` narrows TLS 1.2 suites: a client offering only others fails."""
    config = tls(certs, ssl_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    with running(scope_app, **config) as server:
        url = f"https://localhost:{server.port}/"
        ok = curl("--cacert", certs.ca, "--tls-max", "1.2", "--ciphers",
                  "ECDHE-ECDSA-AES128-GCM-SHA256", url)
        refused = curl("--cacert", certs.ca, "--tls-max", "1.2", "--ciphers",
                       "ECDHE-ECDSA-AES256-GCM-SHA384", url)
    assert ok.returncode == 0, ok.stderr
    assert refused.returncode != 0


def test_tls_settings_are_plain_data_a_worker_can_receive(certs: Certs) -> None:
    """Contexts cannot be pickled: workers get the settings and build their own."""
    import pickle

    from onehop.server import Config

    config = Config(app="tests.server.apps:app", **tls(certs))
    settings = pickle.loads(pickle.dumps(config)).tls_settings()
    assert settings is not None and settings.context().verify_mode == ssl.CERT_NONE
    assert Path(settings.certfile).exists()


def test_a_tls_handshake_must_finish_within_the_header_timeout(certs: Certs) -> None:
    """A client that opens TCP and never says ClientHello is dropped after the header
    timeout, as a slow request head would be (the endpoint's timers start after it)."""
    import contextlib
    import socket

    with running(scope_app, header_timeout=0.5, **tls(certs)) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
        assert time.monotonic() - started < 3


def test_websocket_over_tls_is_wss_in_the_scope_rfc6455_11_1_2(certs: Certs) -> None:
    import websockets

    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        seen.append(scope["scheme"])
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": message.get("text")})

    async def client(port: int) -> str:
        context = ssl.create_default_context(cafile=certs.ca)
        async with websockets.connect(f"wss://127.0.0.1:{port}/", ssl=context) as ws:
            await ws.send("secure")
            return str(await ws.recv())

    with running(app, **tls(certs)) as server:
        assert asyncio.run(client(server.port)) == "secure"
    assert seen == ["wss"]
